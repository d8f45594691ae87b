"""The configuration tables users read are held to the code: docs/operations.md's
``ServerOptions`` table names every option with its default, its chat flags table every flag,
variable and default of ``python -m examples.chat``; and the two reference clients (Python
``ClientConfig``, TypeScript ``DEFAULT_SESSION_CONFIG``) have the same defaults, which
docs/protocol.md and both clients' docs state once for both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from sigma_core.api import ClientOptions, ServerOptions
from sigma_core.client import ClientConfig, ReconnectPolicy

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `examples.chat` lives beside the packages, not in them
    sys.path.insert(0, str(ROOT))

from examples.chat.server import ChatConfig, parse_config  # noqa: E402

OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
SESSION_TS = (ROOT / "clients" / "js" / "src" / "session.ts").read_text()


def _table(text: str, heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first table after ``heading``."""
    section = text[text.index(heading):]
    rows, started = [], False
    for line in section.splitlines()[1:]:
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if not set(line) <= set("|-: "):
                rows.append(cells)
        elif started:
            break
    return rows[1:]  # without the header row


def _names(cell: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", cell)


def test_operations_table_lists_every_server_option_with_its_default() -> None:
    rows = _table(OPERATIONS, "### Server options")
    documented = {name: row[1] for row in rows for name in _names(row[0])}
    fields = {f.name for f in dataclasses.fields(ServerOptions)}
    assert set(documented) == fields, (
        f"missing from docs/operations.md: {sorted(fields - set(documented))}; "
        f"not options: {sorted(set(documented) - fields)}")
    defaults = ServerOptions()
    for name, cell in documented.items():
        value = getattr(defaults, name)
        if isinstance(value, bool | int | float | str) or value is None or value == ():
            assert cell.strip("`") == repr(value).replace("'", '"'), (name, cell, value)


@pytest.mark.parametrize(("page", "heading"), [
    ("docs/operations.md", "### The chat server: flags"),
    ("examples/chat/README.md", "## Configuration"),
])
def test_chat_flags_tables_match_the_chat_flags_and_variables(page: str, heading: str) -> None:
    rows = _table((ROOT / page).read_text(), heading)
    flags = {row[0].strip("`"): (row[1].strip("`"), row[2]) for row in rows}
    # Every flag the parser knows is in the table, with its variable.
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
        parse_config(["--help"], env={})
    known = set(re.findall(r"^  (--[a-z-]+)", help_text.getvalue(), re.MULTILINE)) - {"--help"}
    assert set(flags) == known
    for flag, (variable, _default) in flags.items():
        assert variable == "SIGMASOCKETS_" + flag[2:].upper().replace("-", "_")
    # The numeric defaults in the table are the parser's (values without overrides).
    config = parse_config([], env={})
    assert isinstance(config, ChatConfig)
    numeric = {"--port": config.port, "--max-connections": config.max_connections,
               "--heartbeat-interval": config.heartbeat_interval,
               "--history-size": config.history_size,
               "--session-timeout": config.session_timeout,
               "--max-rooms": config.limits.max_rooms,
               "--rooms-per-user": config.limits.rooms_per_user,
               "--room-create-interval": config.limits.room_create_interval,
               "--room-expiry": config.limits.room_expiry,
               "--sync-interval": config.limits.sync_interval,
               "--typing-interval": config.limits.typing_interval,
               "--rooms-update-interval": config.limits.rooms_update_interval,
               "--drain-window": config.drain_window, "--drain-timeout": config.drain_timeout,
               "--ready-delay": config.ready_delay}
    for flag, value in numeric.items():
        assert float(flags[flag][1].strip("`")) == value, flag
    assert flags["--host"][1] == f"`{config.host}`"
    assert flags["--rooms"][1] == "`" + ",".join(config.rooms) + "`"


def _ts_defaults() -> dict[str, float]:
    body = SESSION_TS[SESSION_TS.index("export const DEFAULT_SESSION_CONFIG"):]
    body = body[:body.index("};")]
    values: dict[str, float] = {}
    for name, raw in re.findall(r"^\s+(\w+): ([^,\n]+),", body, re.MULTILINE):
        text = raw.strip()
        if text == "1 << 20":
            values[name] = 1 << 20
        elif re.fullmatch(r"[\d.]+", text):
            values[name] = float(text)
    return values


def test_python_and_typescript_clients_have_the_same_defaults() -> None:
    """Every default the two clients share, in the TypeScript client's milliseconds."""
    ts = _ts_defaults()
    py = ClientConfig(url="ws://h/")
    policy = ReconnectPolicy()
    options = ClientOptions(url="ws://h/")
    ms = 1000.0
    expected = {
        "reconnectInterval": policy.initial_delay * ms,
        "maxReconnectInterval": policy.max_delay * ms,
        "reconnectMultiplier": policy.multiplier,
        "maxReconnectAttempts": policy.max_attempts,
        "heartbeatInterval": py.connection.heartbeat_interval * ms,
        "heartbeatTimeout": py.connection.heartbeat_timeout * ms,
        "connectTimeout": py.connect_timeout * ms,
        "handshakeTimeout": py.connection.handshake_timeout * ms,
        "maxPending": py.max_pending,
        "maxMessageSize": py.connection.websocket.max_message_size,
        "refreshMargin": py.refresh_margin * ms,
        "pace": py.pace,
        "inboxAckEvery": py.inbox_ack_every,
        "inboxAckDelay": py.inbox_ack_delay * ms,
    }
    assert {k: ts.get(k) for k in expected} == expected
    # The adapters' options keep the core's defaults.
    assert (options.reconnect_interval, options.max_reconnect_delay,
            options.max_reconnect_attempts) == (policy.initial_delay, policy.max_delay,
                                                policy.max_attempts)
    assert (options.heartbeat_interval, options.heartbeat_timeout, options.connect_timeout,
            options.max_pending, options.max_message_size, options.token_refresh_margin,
            options.rate_pacing, options.inbox_ack_every, options.inbox_ack_delay) == (
        py.connection.heartbeat_interval, py.connection.heartbeat_timeout, py.connect_timeout,
        py.max_pending, py.connection.websocket.max_message_size, py.refresh_margin, py.pace,
        py.inbox_ack_every, py.inbox_ack_delay)


def _bad_values() -> list[tuple[str, str, object]]:
    cases: list[tuple[str, str, object]] = []
    samples: tuple[ServerOptions | ClientOptions, ...] = (ServerOptions(),
                                                          ClientOptions(url="ws://h/"))
    for sample in samples:
        cls = type(sample)
        for f in dataclasses.fields(sample):
            default = getattr(sample, f.name)
            if isinstance(default, bool) or not isinstance(default, int | float):
                continue
            if cls is ClientOptions and f.name == "session_timeout":
                continue  # accepted for parity with the original and documented as no effect
            bad: list[object] = [-1] if isinstance(default, int) else [-1.0, math.nan]
            cases += [(cls.__name__, f.name, value) for value in bad]
    return [*cases, ("ClientOptions", "rate_pacing", 1.5)]


@pytest.mark.parametrize(("kind", "name", "bad"), _bad_values())
def test_a_bad_option_value_is_refused_with_the_options_own_name(kind: str, name: str,
                                                                  bad: object) -> None:
    """docs/operations.md and ``ServerOptions``/``ClientOptions``: invalid values raise
    ``ValueError`` naming the field -- the option the app passed, also where the core calls it
    otherwise (``session_timeout`` is the hub's ``session_ttl``, ``rate_pacing`` the client's
    ``pace``, ``reconnect_interval`` the backoff's ``initial_delay``)."""
    overrides: dict[str, Any] = {name: bad}
    if kind == "ClientOptions":
        overrides["url"] = "ws://h/"
    build: Any = ServerOptions if kind == "ServerOptions" else ClientOptions
    with pytest.raises(ValueError, match=re.escape(name)):
        build(**overrides)


def test_zero_pacing_and_retrying_forever_are_accepted() -> None:
    options = ClientOptions(url="ws://h/", rate_pacing=0.0, max_reconnect_attempts=None)
    assert (options.rate_pacing, options.max_reconnect_attempts) == (0.0, None)


def test_operations_names_every_extra() -> None:
    """docs/operations.md, "Release packages", lists the extras pyproject.toml defines."""
    import tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    section = OPERATIONS[OPERATIONS.index("## Release packages"):]
    section = section[:section.index("\n## ")]
    assert sorted(e for e in extras if f"`{e}`" not in section) == []


# ------------------------------------------------------------- docs/protocol.md, README, hardening

PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
README = (ROOT / "README.md").read_text()
HARDENING = (ROOT / "docs" / "hardening.md").read_text()


def test_protocol_message_tags_are_the_schemas() -> None:
    """§3: the tag of each body type is its place in the schema's ``union Body``."""
    from sigma_core._wire.Body import Body

    rows = _table(PROTOCOL, "## 3. Envelope encoding")
    tags = {int(row[0]): row[1].strip("`") for row in rows}
    wire = {value: name for name, value in vars(Body).items()
            if not name.startswith("_") and isinstance(value, int)}
    assert tags == wire


def test_protocol_close_codes_and_their_goodbyes_are_the_codes() -> None:
    """§4.4: each close code's name, and the ErrorCode (name and number) of its Goodbye."""
    from sigma_core.errors import CloseCode, ErrorCode

    rows = _table(PROTOCOL, "### 4.4 Close codes")
    assert {int(row[0]): row[1] for row in rows} == {c.value: c.name for c in CloseCode}
    for row in rows:
        for name, number in re.findall(r"`([A-Z_]+)` \(?(\d+)\)?", row[3]):
            assert ErrorCode[name] == int(number), (row[0], name, number)


def test_protocol_error_codes_are_the_codes() -> None:
    """§10: every ErrorCode, by number and name."""
    from sigma_core.errors import ErrorCode

    rows = _table(PROTOCOL, "## 10. Error codes")
    assert {int(row[0]): row[1] for row in rows} == {c.value: c.name for c in ErrorCode}


def test_protocol_timeouts_are_the_defaults() -> None:
    """§4.3: the timers' defaults, server and client."""
    from sigma_core.connection import ConnectionConfig
    from sigma_core.hub import HubConfig

    rows = {row[0].strip("`"): row[1] for row in _table(PROTOCOL, "### 4.3 Timeouts")}
    server, client = ServerOptions(), ClientOptions(url="ws://h/")
    assert rows["connect_timeout"] == f"{client.connect_timeout:g} s"
    assert rows["handshake_timeout"] == (
        f"{server.handshake_timeout:g} s, from socket open")
    assert ClientConfig(url="ws://h/").connection.handshake_timeout == server.handshake_timeout
    assert rows["heartbeat_interval"] == (
        f"server {server.heartbeat_interval:g} s (client's own {client.heartbeat_interval:g} s)")
    assert rows["heartbeat_timeout"] == (
        f"server {server.heartbeat_timeout:g} s (client's own {client.heartbeat_timeout:g} s)")
    assert rows["close_timeout"] == f"{ConnectionConfig().close_timeout:g} s"
    assert server.close_timeout == client.close_timeout == ConnectionConfig().close_timeout
    assert rows["session_ttl"] == f"{HubConfig().session_ttl:g} s"
    assert server.session_timeout == HubConfig().session_ttl


def _number(text: str) -> float | None:
    """The value a cell starts with: ``10,000``, ``1 MiB``, ``16 KiB``, ``20/s, burst 200``."""
    m = re.match(r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(KiB|MiB)?", text)
    if m is None:
        return None
    return float(m[1].replace(",", "")) * {"KiB": 1 << 10, "MiB": 1 << 20}.get(m[2] or "", 1)


def test_hardening_limits_are_the_defaults() -> None:
    """docs/hardening.md, "Limits and their defaults": each option's default as written."""
    from sigma_core.hub import HubConfig
    from sigma_core.websocket import WebSocketConfig

    rows = _table(HARDENING, "## Limits and their defaults")
    server, hub, ws = ServerOptions(), HubConfig(), WebSocketConfig()
    client = ClientOptions(url="ws://h/")
    checked = 0
    for row in rows:
        names = _names(row[0])
        source: Any
        if "(`HubConfig`)" in row[0]:
            source = hub
        elif "(`WebSocketConfig`)" in row[0]:
            source = ws
        elif "(`ClientOptions`)" in row[0]:
            source = client
        else:
            source = server
        for name in names:
            if not hasattr(source, name):
                continue
            default = getattr(source, name)
            if name == "max_hello_positions":
                assert default == 0  # 0: derived, max_topics_per_session + 2 (the row says so)
                assert row[1] == "`max_topics_per_session + 2`"
            elif name == "max_client_info_length":
                assert row[1] == f"{hub.max_client_info_length}, " \
                    f"{hub.max_client_metadata_entries}, {hub.max_client_metadata_chars:,}"
            elif name in ("max_client_metadata_entries", "max_client_metadata_chars"):
                continue
            elif default is None or default == ():
                assert row[1].startswith(("None", "`()`")), (name, row[1])
            else:
                assert _number(row[1]) == default, (name, row[1], default)
            checked += 1
    # The rows without an option name: the hub's topic name limit and the HTTP head.
    extra = {row[0]: row[1] for row in rows if not _names(row[0])}
    assert extra["topic name length (hub)"] == f"{hub.max_topic_length} bytes"
    assert _number(extra["HTTP head"]) == ws.max_handshake_size
    assert checked >= 20


def test_readme_auth_table_defaults_are_the_options() -> None:
    """README.md, "Who may connect and what they send": each option's default."""
    rows = _table(README, "Who may connect and what they send")
    server, client = ServerOptions(), ClientOptions(url="ws://h/")
    seen = set()
    for row in rows:
        side = re.findall(r"\((S|C|S, C)\)", row[0])
        names = _names(row[0])
        defaults = [d.strip() for d in re.sub(r" \(off\)$", "", row[1]).split(",")]
        if len(defaults) == 1:
            defaults *= len(names)
        for name, written in zip(names, defaults, strict=True):
            for target in ([server] if side == ["S"] else [client] if side == ["C"]
                           else [server, client]):
                value = getattr(target, name)
                if name == "serializer":
                    assert written == "`RAW`"
                    assert value.name == "raw"
                elif value is None:
                    assert written == "`None`", name
                elif isinstance(value, str):
                    assert written == f'`"{value}"`', name
                else:
                    assert float(written.strip("`")) == value, (name, written, value)
                seen.add(name)
    assert len(seen) >= 11


def test_operations_metrics_tables_are_the_series_served() -> None:
    """docs/operations.md, "Metrics": both tables name every family the collector serves, with
    its type and labels (the engine's only while an engine reports), and nothing else."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from sigma_core.metrics import Histogram
    from sigma_core.testing import Simulation
    from sigma_ops.metrics import EngineMetrics, SigmaCollector, make_registry

    sim = Simulation(seed=1)
    sim.add_client()
    sim.run(1)

    class Source:
        hub = sim.hub

    snap = Histogram((0.001, 0.01)).snapshot()
    collector = SigmaCollector(Source(), lambda: sim.now)
    collector.set_engine(lambda: EngineMetrics(reachable=True, operations={"append": snap},
                                               errors={"append": 1}, cross_node_lag=snap))

    served: dict[str, tuple[str, set[str]]] = {}
    for family in text_string_to_metric_families(
            generate_latest(make_registry(collector)).decode()):
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        served[name] = (family.type, labels)

    section = OPERATIONS[OPERATIONS.index("## Metrics"):OPERATIONS.index("## Alerts")]
    documented: dict[str, tuple[str, set[str]]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `sigmasockets_"):
            documented[cells[0].strip("`")] = (cells[1], set(_names(cells[2])))
    assert documented == served


def test_operations_names_every_refusal_reason_and_kind() -> None:
    """docs/operations.md, "Metrics": the values of the ``reason`` and ``kind`` labels."""
    from sigma_core.metrics import REFUSAL_REASONS, TOPIC_KINDS

    rows = {line.split("|")[1].strip().strip("`"): line for line in OPERATIONS.splitlines()
            if line.startswith("| `sigmasockets_")}
    refused = rows["sigmasockets_connections_refused_total"].split("|")[4]
    assert re.findall(r"`([a-z_]+)` \(", refused) == list(REFUSAL_REASONS)
    kinds = rows["sigmasockets_publishes_total"].split("|")[4]
    assert re.findall(r"`([a-z]+)` \(", kinds) == list(TOPIC_KINDS)
    assert "by the same kinds" in rows["sigmasockets_deliveries_total"]


def test_readme_names_methods_both_adapters_have() -> None:
    """README.md, "Using it from asyncio or trio": every server and client method it names
    exists on both adapters (sigma_trio's server starts with ``serve``, as it says)."""
    import sigma_asyncio
    import sigma_trio

    start = README.index("Server: `start`")
    text = README[start:README.index('(docs/reference/index.md, "Events")', start)]
    server_part, client_part = text.split("Client: ", 1)
    # (The parenthesis says how each starts: ``async with``, sigma_trio's ``serve``.)
    server_part = re.split(r";\s+callbacks", server_part)[0]
    server_part = re.sub(r"\(or `async with`.*?\), ", "", server_part)
    client_part = re.split(r";\s+callbacks", client_part)[0]
    assert hasattr(sigma_trio.SigmaSocketServer, "serve")
    for package in (sigma_asyncio, sigma_trio):
        for name in re.findall(r"`([a-z_]+)", server_part):
            if name == "start" and package is sigma_trio:
                continue  # (serve, above)
            assert hasattr(package.SigmaSocketServer, name), (package.__name__, name)
        for name in re.findall(r"`([a-z_]+)", client_part):
            if name != "async":  # `async for message in client`
                assert hasattr(package.SigmaSocketClient, name), (package.__name__, name)
    assert hasattr(sigma_asyncio.SigmaSocketClient, "__aiter__")
    assert hasattr(sigma_trio.SigmaSocketClient, "__aiter__")


def test_migration_names_only_real_options() -> None:
    """docs/migration.md: every option named under "Server options" / "Client options" (the
    tables and their "New:" lists) is a field of ServerOptions / ClientOptions, and each
    default it states for ours is the field's."""
    migration = (ROOT / "docs" / "migration.md").read_text()
    cases: tuple[tuple[str, str, type], ...] = (
        ("## Server options", "## Server methods", ServerOptions),
        ("## Client options", "## Client methods", ClientOptions))
    for heading, end, cls in cases:
        section = migration[migration.index(heading):migration.index(end)]
        fields = {f.name for f in dataclasses.fields(cls)}
        named: set[str] = set()
        for line in section.splitlines():
            if line.startswith("| `"):
                cells = [c.strip() for c in line.strip("|").split("|")]
                named.update(_names(cells[2]))
        new = section[section.index("New: "):]
        named.update(re.findall(r"`([a-z_]+)`", new))
        named -= {"heartbeat_interval"} if cls is ServerOptions else set()  # (in a note)
        assert named <= fields, sorted(named - fields)
        sample: Any = ClientOptions(url="ws://h/") if cls is ClientOptions else ServerOptions()
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if line.startswith("| `") and _names(cells[2]) and cells[3] != "required":
                value = getattr(sample, _names(cells[2])[0])
                written = cells[3].removesuffix(" s").strip("`").replace("_", "").strip('"')
                assert written == str(value), (cells[2], cells[3], value)


def test_browser_tutorial_options_table_is_both_clients_defaults() -> None:
    """docs/tutorials/browser.md, "Options" (it says this file holds it): each TypeScript
    default is the TypeScript client's, each Python default in parentheses is
    ``ClientOptions``'s, and the Python names are its fields."""
    text = (ROOT / "docs" / "tutorials" / "browser.md").read_text()
    section = text[text.index("## Options"):text.index("## In Node")]
    ts = _ts_defaults()
    # The TypeScript option names whose DEFAULT_SESSION_CONFIG key differs.
    ts_key = {"tokenRefreshMargin": "refreshMargin", "ratePacing": "pace"}
    options = ClientOptions(url="ws://h/")
    fields = {f.name for f in dataclasses.fields(ClientOptions)}
    checked = 0
    for line in section.splitlines()[4:]:
        if not line.startswith("| "):
            continue
        ts_cell, ts_default, py_cell, _ = (c.strip() for c in line.strip().strip("|").split("|"))
        py_names = _names(py_cell)
        assert set(py_names) <= fields, py_names
        grouped = re.fullmatch(r"((?:`[a-z_]+`(?:, )?)+) \(([^()]*)\)", py_cell)
        if grouped is not None:  # "`a`, `b` (`1`, `2`)": the defaults of the names, in order
            written = [d.strip().strip("`") for d in grouped[2].split(",")]
            for name, value_text in zip(_names(grouped[1]), written, strict=True):
                value = getattr(options, name)
                if name == "serializer":
                    assert value_text == "RAW"
                    assert value.name == "raw"
                elif isinstance(value, str):
                    assert value_text == f'"{value}"', name
                else:
                    assert value_text == repr(value), (name, value_text, value)
                checked += 1
        for name, value_text in re.findall(r"`([a-z_]+)` \(`([^`]+)`\)", py_cell):
            if grouped is None:  # "`a` (`1`), `b` (`2`), `c`": one default per name
                assert value_text == repr(getattr(options, name)), (name, value_text)
                checked += 1
        ts_names = re.findall(r"`([a-zA-Z]+)`", ts_cell)
        for name, value_text in zip(ts_names, (d.strip().strip("`")
                                               for d in ts_default.split(",")), strict=False):
            key = ts_key.get(name, name)
            if key in ts and re.fullmatch(r"[\d.]+", value_text):
                assert float(value_text) == ts[key], (name, value_text, ts[key])
                checked += 1
    assert checked >= 25, checked


def test_typescript_readme_defaults_are_the_clients() -> None:
    """clients/js/README.md, "API": each ``option`` (default) it states is the TypeScript
    client's (DEFAULT_SESSION_CONFIG)."""
    readme = (ROOT / "clients" / "js" / "README.md").read_text()
    api = readme[readme.index("`new SigmaSocketClient(options)`"):readme.index("| method |")]
    ts = _ts_defaults()
    key = {"tokenRefreshMargin": "refreshMargin", "ratePacing": "pace"}
    found = re.findall(r"`([a-zA-Z]+)` \((1 MiB|\d[\d.]*)", api)
    for name, text in found:
        value = float(1 << 20) if text == "1 MiB" else float(text)
        assert ts[key.get(name, name)] == value, (name, text)
    assert len(found) >= 14, found


def test_reference_event_tables_are_the_events_and_others_are_refused() -> None:
    """docs/reference/index.md, "Events": the server's and the client's tables name exactly the
    events they fire (SERVER_EVENTS, CLIENT_EVENTS); ``on``/``off`` refuse any other name on
    every adapter."""
    import sigma_asgi
    import sigma_asyncio
    import sigma_trio
    from sigma_core.api import CLIENT_EVENTS, SERVER_EVENTS

    reference = (ROOT / "docs" / "reference" / "index.md").read_text()
    server_table = _table(reference, "Server (`SigmaSocketServer.on`)")
    client_table = _table(reference, "Client (`SigmaSocketClient.on`)")
    assert {row[0].strip("`") for row in server_table} == SERVER_EVENTS
    assert {_names(row[0])[0] for row in client_table} | {
        n for row in client_table for n in _names(row[0])} == CLIENT_EVENTS
    servers: list[Any] = [sigma_asyncio.SigmaSocketServer(), sigma_trio.SigmaSocketServer(),
                          sigma_asgi.SigmaASGIApp()]
    clients: list[Any] = [sigma_asyncio.SigmaSocketClient("ws://h/"),
                          sigma_trio.SigmaSocketClient("ws://h/")]
    target: Any
    for target, known in [*((s, SERVER_EVENTS) for s in servers),
                          *((c, CLIENT_EVENTS) for c in clients)]:
        for event in known:
            assert target.on(event, print) is print
            target.off(event, print)
        for method in (target.on, target.off):
            with pytest.raises(ValueError, match=r"unknown (server|client) event 'conection': "
                                                 r"one of .*connection"):
                method("conection", print)


def test_typescript_readme_names_the_packages_dependencies() -> None:
    """clients/js/README.md, "Install": the dependencies it names are package.json's, and only
    the msgpack entry point imports @msgpack/msgpack."""
    import json

    js = ROOT / "clients" / "js"
    readme = (js / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("npm install sigmasockets-client"))
    deps = json.loads((js / "package.json").read_text())["dependencies"]
    assert sorted(re.findall(r"(@?[a-z][\w/.-]*)", line.split("# brings", 1)[1].replace(
        " and ", " "))) == sorted(deps)
    importers = [p.name for p in (js / "src").glob("*.ts")
                 if re.search(r"from \"@msgpack/msgpack\"", p.read_text())]
    assert importers == ["msgpack.ts"]


def test_operations_ops_table_is_its_signature() -> None:
    """docs/operations.md, "`Ops` (sigma_ops)": every argument with its default."""
    import inspect

    from sigma_ops import Ops

    rows = _table(OPERATIONS, "### `Ops` (sigma_ops)")
    documented = {row[0].strip("`"): row[1].strip("`") for row in rows}
    params = {name: p.default for name, p in inspect.signature(Ops).parameters.items()}
    assert set(documented) == set(params)
    for name, default in params.items():
        assert documented[name] == (f'"{default}"' if isinstance(default, str) else repr(default))


def test_cluster_engine_limits_table_is_the_config() -> None:
    """docs/cluster.md, "Limits and timeouts (RedisEngineConfig)": every setting but the URL,
    with its default."""
    from sigma_core.backplane import HistoryLimits
    from sigma_redis import RedisEngineConfig

    rows = _table((ROOT / "docs" / "cluster.md").read_text(),
                  "## Limits and timeouts (RedisEngineConfig)")
    documented = {row[0].strip("`"): row[1].strip("`") for row in rows}
    config = RedisEngineConfig(url="redis://h/")
    fields = {f.name for f in dataclasses.fields(config)} - {"url"}
    assert set(documented) == fields
    for name in fields:
        value = getattr(config, name)
        if name == "history":
            assert value == HistoryLimits()
            assert documented[name] == "HistoryLimits()"
        elif isinstance(value, bool | str):
            assert documented[name] == str(value), name
        else:
            assert _number(documented[name]) == value, (name, documented[name], value)


def test_operations_names_the_metrics_content_type() -> None:
    """docs/operations.md, "HTTP endpoints": the content type /metrics is served with
    (sigma_ops.routes sends prometheus_client's CONTENT_TYPE_LATEST)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    row = next(line for line in OPERATIONS.splitlines() if line.startswith("| `/metrics` |"))
    assert f"`{CONTENT_TYPE_LATEST}`" in row
