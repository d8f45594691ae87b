"""The chat server's operations options: flags and SIGMASOCKETS_* variables, and SIGTERM in a
real process — /readyz turns 503 before the drain starts, the drain spreads the goodbyes, the
process exits 0 once its clients are gone."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import pytest
from ops_support import LOCAL, ChatNode, free_port, http

from examples.chat.server import ChatConfig, parse_config
from sigma_asyncio import SigmaSocketClient
from sigma_core.messages import ClientInfo


def test_defaults_flags_and_variables() -> None:
    d = parse_config([], env={})
    assert (d.metrics, d.dashboard, d.dashboard_token, d.ops_port, d.node_name) == (
        True, True, "", None, "")
    assert (d.drain_window, d.drain_timeout, d.ready_delay) == (0.0, 10.0, 0.0)
    assert d == ChatConfig()
    env = {"SIGMASOCKETS_METRICS": "off", "SIGMASOCKETS_DASHBOARD": "false",
           "SIGMASOCKETS_DASHBOARD_TOKEN": "t", "SIGMASOCKETS_OPS_PORT": "9100",
           "SIGMASOCKETS_NODE_NAME": "n2", "SIGMASOCKETS_DRAIN_WINDOW": "10",
           "SIGMASOCKETS_DRAIN_TIMEOUT": "20", "SIGMASOCKETS_READY_DELAY": "500ms"}
    c = parse_config([], env=env)
    assert (c.metrics, c.dashboard, c.dashboard_token, c.ops_port, c.node_name) == (
        False, False, "t", 9100, "n2")
    assert (c.drain_window, c.drain_timeout, c.ready_delay) == (10.0, 20.0, 0.5)
    flags = parse_config(["--metrics", "on", "--ops-port", "same", "--drain-window", "0"],
                         env=env)
    assert (flags.metrics, flags.ops_port, flags.drain_window) == (True, None, 0.0)
    proxies = parse_config([], env={"SIGMASOCKETS_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
    assert proxies.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert parse_config(["--trusted-proxies", "::1"], env={}).trusted_proxies == ("::1",)


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["--drain-window", "30"], {}, "--drain-window (30.0) must be <= --drain-timeout"),
    (["--metrics", "maybe"], {}, "must be on or off"),
    ([], {"SIGMASOCKETS_DRAIN_WINDOW": "-1"}, "SIGMASOCKETS_DRAIN_WINDOW='-1'"),
    ([], {"SIGMASOCKETS_OPS_PORT": "70000"}, "SIGMASOCKETS_OPS_PORT"),
    ([], {"SIGMASOCKETS_TRUSTED_PROXIES": "nginx"}, "'nginx' is not an IP address"),
    (["--trusted-proxies", "10.0.0.0/40"], {}, "trusted_proxies"),
])
def test_bad_values_are_refused_with_their_name(argv: list[str], env: dict[str, str],
                                                message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(argv, env=env)
    assert message in capsys.readouterr().err


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_sigterm_turns_readiness_off_then_drains(tmp_path: Path) -> None:
    ops_port = free_port()
    node = ChatNode(tmp_path, "n1", free_port(), "--ready-delay", "1", "--drain-window", "1",
                    "--drain-timeout", "5", "--ops-port", str(ops_port))
    node.start()
    try:
        await node.ready()
        assert (await http(ops_port, "/readyz"))[0] == 200
        assert (await http(ops_port, "/metrics"))[0] == 200
        assert (await http(node.port, "/metrics"))[0] == 200  # both, not only the ops port
        clients = [SigmaSocketClient(
            f"ws://{LOCAL}:{node.port}/ws", max_reconnect_attempts=1,
            client_info=ClientInfo(name="t", metadata={"user": f"u{i}"})) for i in range(4)]
        closed: list[float] = []
        with anyio.fail_after(30):
            for client in clients:
                client.on("disconnection", lambda code, reason: closed.append(
                    anyio.current_time()))
                await client.connect()
            node.signal(signal.SIGTERM)
            sigterm = anyio.current_time()
            # Not ready at once, while every client is still connected (the drain waits).
            while (await http(ops_port, "/readyz"))[0] != 503:
                await anyio.sleep(0.02)
            assert (await http(ops_port, "/readyz"))[2] == b"shutting down\n"
            assert not closed
            assert (await http(ops_port, "/livez"))[0] == 200
            assert await node.exited(10) == 0, node.log()
            for client in clients:
                await client.disconnect()
        assert len(closed) >= 4
        first = sorted(closed)[:4]
        assert first[0] - sigterm >= 0.9  # the ready delay came first
        assert first[-1] - first[0] >= 0.5  # spread over the 1 s window, not all at once
        assert "over 1 s" in node.log()
    finally:
        node.stop()
