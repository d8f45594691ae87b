"""The conformance harness: one client trace, run by every client implementation, same outputs.

The trace format and the driver protocol are documented in docs/conformance-traces.md. This
module holds the reference driver (``sigma_core.client.ClientSession`` behind a fake server
WebSocket, so the Python machine is fed whole envelopes like every other client), the Node driver
(``clients/js/dist/test/helpers/conformance-driver.js``, one long-lived process), the canonical
JSON of envelopes, and the hypothesis strategies that generate traces.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import os
import select
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from sigma_core import codec, messages
from sigma_core.client import (
    ClientConfig,
    ClientEvent,
    ClientSession,
    CloseTransport,
    Connected,
    Disconnected,
    ErrorReceived,
    GaveUp,
    MessageReceived,
    OpenTransport,
    PresenceReceived,
    Reconnecting,
    ReconnectPolicy,
    RecoveryFailed,
    SessionReset,
    StatusChanged,
    SubscribedEvent,
    TokenNeeded,
    UnsubscribedEvent,
)
from sigma_core.connection import ConnectionConfig
from sigma_core.errors import SigmaError
from sigma_core.websocket import HandshakeRequest, Role, WebSocket, WebSocketConfig, WebSocketState
from sigma_core.websocket import MessageReceived as WsMessage

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "clients" / "js"
DRIVER = JS / "dist" / "test" / "helpers" / "conformance-driver.js"
TRACES = ROOT / "tests" / "conformance"

Json = Any


# ----------------------------------------------------------------------------- canonical JSON

_SAFE = (1 << 53) - 1


def canonical(value: object) -> Json:
    """An envelope body (or part of one) as canonical JSON: ``type`` + snake_case fields, bytes
    as hex, u64 above 2**53 - 1 as a decimal string, enums as their numbers."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, int):
        return value if value <= _SAFE else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, messages.StreamPosition):
        return {"epoch": canonical(value.epoch), "offset": canonical(value.offset)}
    if isinstance(value, tuple | list):
        return [canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        out: dict[str, Json] = {}
        if type(value).__name__ in _BODIES:
            out["type"] = type(value).__name__
        for f in dataclasses.fields(value):
            out[f.name] = canonical(getattr(value, f.name))
        return out
    raise TypeError(f"no canonical form for {type(value).__name__}")


_BODIES = {name: getattr(messages, name) for name in (
    "Hello", "Welcome", "Data", "Ack", "Ping", "Pong", "Subscribe", "Unsubscribe", "Subscribed",
    "Unsubscribed", "Presence", "Error", "Goodbye", "Refresh", "Refreshed")}


def _int(v: Json) -> int:
    return int(v)


def _position(v: Json) -> messages.StreamPosition | None:
    return None if v is None else messages.StreamPosition(_int(v["epoch"]), _int(v["offset"]))


def _recovery(v: Json) -> messages.TopicRecovery:
    return messages.TopicRecovery(
        topic=v["topic"], status=messages.RecoveryStatus(v.get("status", 0)),
        position=_position(v.get("position")), lost_from=_int(v.get("lost_from", 0)),
        lost_to=_int(v.get("lost_to", 0)), replayed=_int(v.get("replayed", 0)))


def body_from_json(obj: Json) -> messages.Body:
    """The inverse of :func:`canonical` for a whole body (missing fields take their defaults)."""
    cls = _BODIES[obj["type"]]
    kwargs: dict[str, Any] = {}
    for key, v in obj.items():
        if key == "type":
            continue
        if key in ("position",):
            kwargs[key] = _position(v)
        elif key == "positions":
            kwargs[key] = tuple(messages.TopicPosition(
                topic=p["topic"], position=messages.StreamPosition(
                    _int(p["position"]["epoch"]), _int(p["position"]["offset"])))
                for p in v)
        elif key == "recovery":
            kwargs[key] = (tuple(_recovery(r) for r in v) if isinstance(v, list)
                           else _recovery(v))
        elif key == "limits":
            kwargs[key] = None if v is None else messages.Limits(**v)
        elif key == "client":
            kwargs[key] = None if v is None else messages.ClientInfo(**v)
        elif key in ("resume_token", "payload"):
            kwargs[key] = bytes.fromhex(v)
        elif key == "action":
            kwargs[key] = messages.PresenceAction(v)
        elif key == "metadata":
            kwargs[key] = dict(v)
        elif isinstance(v, str) and key not in ("session_id", "topic", "reason", "message",
                                                "details", "fresh_reason", "auth_token",
                                                "serializer", "token"):
            kwargs[key] = int(v)
        else:
            kwargs[key] = v
    return cls(**kwargs)  # type: ignore[no-any-return]


def wire_trace(trace: Json) -> Json:
    """A trace as the drivers take it: every ``recv`` envelope encoded to hex by sigma_core."""
    steps = []
    for step in trace["steps"]:
        if step["do"] == "recv" and not isinstance(step["env"], str):
            steps.append({**step, "env": codec.encode(body_from_json(step["env"])).hex()})
        else:
            steps.append(step)
    return {"config": trace.get("config", {}), "steps": steps}


# ----------------------------------------------------------------------------- Python driver


def _pos(p: messages.StreamPosition | None) -> Json:
    return None if p is None else [canonical(p.epoch), canonical(p.offset)]


def normal_event(e: ClientEvent) -> Json:
    """A ClientSession event in the harness's normal form (the TS driver's ``normal``)."""
    if isinstance(e, OpenTransport):
        return {"open": e.attempt}
    if isinstance(e, CloseTransport):
        return {"close": e.attempt}
    if isinstance(e, StatusChanged):
        return {"status": e.status.value}
    if isinstance(e, Connected):
        return {"connected": {"session_id": e.session_id, "resumed": e.resumed,
                              "fresh_reason": e.fresh_reason}}
    if isinstance(e, SessionReset):
        return {"session_reset": {"old": e.old_session_id, "new": e.new_session_id,
                                  "reason": e.reason, "resent": e.resent}}
    if isinstance(e, RecoveryFailed):
        return {"recovery_failed": {"topic": e.topic, "lost_from": canonical(e.lost_from),
                                    "lost_to": canonical(e.lost_to), "position": _pos(e.position)}}
    if isinstance(e, MessageReceived):
        return {"message": {"topic": e.topic, "position": _pos(e.position),
                            "payload": e.payload.hex(), "timestamp_ms": canonical(e.timestamp_ms)}}
    if isinstance(e, SubscribedEvent):
        return {"subscribed": {"topic": e.topic, "request_id": e.request_id,
                               "status": int(e.recovery.status),
                               "position": _pos(e.recovery.position)}}
    if isinstance(e, UnsubscribedEvent):
        return {"unsubscribed": {"topic": e.topic, "request_id": e.request_id}}
    if isinstance(e, PresenceReceived):
        p = e.presence
        return {"presence": {"topic": p.topic, "session_id": p.session_id,
                             "action": int(p.action)}}
    if isinstance(e, ErrorReceived):
        return {"server_error": {"code": e.error.code, "request_id": e.error.request_id}}
    if isinstance(e, Disconnected):
        return {"disconnected": {"code": e.code,
                                 "goodbye": None if e.goodbye is None else e.goodbye.code,
                                 "will_reconnect": e.will_reconnect}}
    if isinstance(e, Reconnecting):
        return {"reconnecting": {"attempt": e.attempt, "delay_ms": round(e.delay * 1000)}}
    if isinstance(e, GaveUp):
        return {"gave_up": True}
    if isinstance(e, TokenNeeded):
        return {"token_needed": e.reason}
    return {"unknown": type(e).__name__}


class PythonDriver:
    """Runs traces through ``sigma_core.client.ClientSession`` (the reference)."""

    name = "python"

    def run(self, trace: Json) -> Json:
        return {"steps": _PythonRun(wire_trace(trace)).steps}

    def close(self) -> None:
        pass


class _PythonRun:
    def __init__(self, trace: Json) -> None:
        c = trace.get("config", {})
        r = c.get("reconnect", {})
        rnd = float(c.get("random", 0.5))

        class _Entropy:
            def random(self) -> float:
                return rnd

            def token_bytes(self, n: int) -> bytes:
                return bytes(n)

        config = ClientConfig(
            url="ws://sigma.test/",
            max_pending=c.get("max_pending", 1000),
            connect_timeout=c.get("connect_timeout_ms", 10000) / 1000,
            auth_token=c.get("auth_token", ""),
            serializer=c.get("serializer", ""),
            refresh_tokens=c.get("refresh_tokens", False),
            refresh_margin=c.get("refresh_margin_ms", 30000) / 1000,
            pace=c.get("pace", 0.9),
            inbox_ack_every=c.get("inbox_ack_every", 128),
            inbox_ack_delay=c.get("inbox_ack_delay_ms", 1000) / 1000,
            reconnect=ReconnectPolicy(
                initial_delay=r.get("initial_ms", 1000) / 1000,
                max_delay=r.get("max_ms", 30000) / 1000,
                multiplier=r.get("multiplier", 2),
                max_attempts=r.get("max_attempts", 10)),
            connection=ConnectionConfig(
                websocket=WebSocketConfig(max_message_size=c.get("max_message_size", 1 << 20)),
                heartbeat_interval=c.get("heartbeat_interval_ms", 30000) / 1000,
                heartbeat_timeout=c.get("heartbeat_timeout_ms", 70000) / 1000,
                handshake_timeout=c.get("handshake_timeout_ms", 10000) / 1000))
        self.session = ClientSession(config, entropy=_Entropy())
        self.current = 0
        self.opened = 0  # the latest attempt reported opened (a second report is not made)
        self.ws: WebSocket | None = None
        self.steps: list[Json] = []
        for step in trace["steps"]:
            self.steps.append(self._step(step))

    def _step(self, step: Json) -> Json:
        s = self.session
        now = step["t"] / 1000
        kind = step["do"]
        result: Json = None
        try:
            if kind == "connect":
                s.connect(now)
            elif kind == "disconnect":
                s.disconnect(now)
            elif kind == "send":
                result = s.send(bytes.fromhex(step["payload"]), now, topic=step.get("topic", ""))
            elif kind == "subscribe":
                result = s.subscribe(step["topic"], now)
            elif kind == "unsubscribe":
                result = s.unsubscribe(step["topic"], now)
            elif kind == "opened" and self.opened != self.current:
                self.opened = self.current
                before = s._conn
                self._drain(now)
                s.transport_opened(self.current, now)
                if s._conn is not None and s._conn is not before:
                    self.ws = WebSocket(Role.SERVER, WebSocketConfig(
                        max_message_size=1 << 24))
            elif kind == "opened":
                pass
            elif kind == "open_failed":
                if self.opened != self.current:
                    s.transport_failed(self.current, now, "refused")
            elif kind == "recv":
                ws = self.ws
                if ws is not None and ws.state is WebSocketState.OPEN and s._conn is not None:
                    ws.send_message(bytes.fromhex(step["env"]))
                    s.receive_data(self.current, b"".join(ws.data_to_send()), now)
            elif kind == "server_close":
                ws = self.ws
                if ws is not None and ws.state is WebSocketState.OPEN and s._conn is not None:
                    ws.close(step["code"], step.get("reason", ""))
                    s.receive_data(self.current, b"".join(ws.data_to_send()), now)
                    self._drain(now)
                s.transport_closed(self.current, now)
            elif kind == "drop":
                s.transport_closed(self.current, now)
            elif kind == "timer":
                s.handle_timer(now)
            elif kind == "token":
                s.refresh_token(step["token"], now)
            else:
                raise ValueError(f"unknown step {kind!r}")
        except SigmaError as exc:
            result = {"error": type(exc).__name__}
        sends = self._drain(now)
        events = []
        for e in s.events_received():
            if isinstance(e, OpenTransport):
                self.current = e.attempt
            n = normal_event(e)
            if kind in ("server_close", "drop") and "close" in n:
                continue  # a close order for a socket the harness reported closed
            events.append(n)
        deadline = s.next_deadline()
        return {"result": result, "events": events, "sends": sends,
                "deadline": None if deadline is None else round(deadline * 1000)}

    def _drain(self, now: float) -> list[str]:
        """Carry the client's bytes to the fake server; answer the upgrade; return the
        envelopes the client sent (hex)."""
        sends: list[str] = []
        for _ in range(10):
            out = self.session.data_to_send()
            ws = self.ws
            if not out or ws is None:
                break
            ws.receive_data(b"".join(out))
            for ev in ws.events_received():
                if isinstance(ev, HandshakeRequest):
                    ws.accept()
                elif isinstance(ev, WsMessage):
                    assert isinstance(ev.data, bytes)
                    sends.append(ev.data.hex())
            back = ws.data_to_send()
            if back and self.session._conn is not None:
                self.session.receive_data(self.current, b"".join(back), now)
        return sends


# ----------------------------------------------------------------------------- Node driver


def node_available() -> str | None:
    """Why the Node driver cannot run here (None: it can)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS / "node_modules" / "typescript").is_dir():
        return "clients/js/node_modules is missing (npm ci in clients/js)"
    return None


def build_js() -> None:
    """Compile clients/js (src and test) with tsc when a source is newer than the driver."""
    sources = [p for d in ("src", "test") for p in (JS / d).rglob("*.ts")]
    newest = max(p.stat().st_mtime for p in sources)
    if DRIVER.exists() and DRIVER.stat().st_mtime >= newest:
        return
    subprocess.run(["npx", "--no-install", "tsc", "-p", "tsconfig.json"], cwd=JS, check=True,
                   timeout=300, env={**os.environ, "NO_UPDATE_NOTIFIER": "1"})
    DRIVER.touch()


class NodeDriver:
    """One long-lived ``node conformance-driver.js``, fed one JSON line per request."""

    name = "typescript"

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["node", str(DRIVER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def request(self, obj: Json, timeout: float = 30.0) -> Json:
        """Send one request; its answer must come within ``timeout`` seconds (a decoder
        caught in an offset loop fails the test instead of hanging it)."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            raise TimeoutError(f"the node driver did not answer within {timeout} s: {obj!r:.300}")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the node driver exited ({self.proc.poll()})")
        answer = json.loads(line)
        if "crash" in answer:
            raise RuntimeError(f"the node driver crashed: {answer['crash']}")
        return answer

    def run(self, trace: Json) -> Json:
        return self.request({"trace": wire_trace(trace)})

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def first_difference(trace: Json, a: Json, b: Json) -> str | None:
    """None when both results are equal; else where they first differ, readably."""
    for i, (sa, sb) in enumerate(zip(a["steps"], b["steps"], strict=True)):
        if sa != sb:
            step = trace["steps"][i]
            shown = dict(step)
            if step["do"] == "recv" and isinstance(step["env"], str):
                shown["env"] = canonical(codec.decode(bytes.fromhex(step["env"])))
            lines = [f"step {i}: {json.dumps(shown)}"]
            for key in ("result", "events", "sends", "deadline"):
                if sa[key] != sb[key]:
                    va, vb = sa[key], sb[key]
                    if key == "sends":
                        va = [canonical(codec.decode(bytes.fromhex(h))) for h in va]
                        vb = [canonical(codec.decode(bytes.fromhex(h))) for h in vb]
                    lines.append(f"  {key}:\n    python:     {json.dumps(va)}\n"
                                 f"    typescript: {json.dumps(vb)}")
            return "\n".join(lines)
    return None


def load_traces() -> dict[str, Json]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(TRACES.glob("*.json"))}


# ----------------------------------------------------------------------------- generation

TOPICS = ("a", "b", "c")


@functools.cache
def _one_of(*values: Any) -> st.SearchStrategy[Any]:
    """A cached sampled_from: generation runs thousands of times per test run."""
    return st.sampled_from(values)


@functools.cache
def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


_epochs = _one_of(1, 2)
_offsets = st.integers(min_value=0, max_value=6)
_position_json = st.builds(lambda e, o: {"epoch": e, "offset": o}, _epochs, _offsets)
_any_topic = _one_of(*TOPICS, "$all", "$inbox")
_request_ids = st.integers(min_value=0, max_value=8)
_maybe_position = st.none() | _position_json


@st.composite
def _recovery_json(draw: st.DrawFn) -> Json:
    status = draw(_one_of(0, 1, 2))
    out: Json = {"topic": draw(_any_topic), "status": status,
                 "position": draw(_maybe_position)}
    if status == 1:
        out["lost_from"] = draw(_ints(0, 6))
        out["lost_to"] = draw(_ints(0, 6))
    return out


@st.composite
def envelopes(draw: st.DrawFn) -> Json:
    """Envelopes a server could send, shaped to hit the client's state often."""
    kind = draw(_one_of("Welcome", "Data", "Data", "Data", "Ack", "Subscribed",
                                 "Unsubscribed", "Error", "Goodbye", "Ping", "Presence", "Pong",
                        "Refreshed"))
    if kind == "Refreshed":
        return {"type": "Refreshed", "credentials_expire_ms": draw(_one_of(0, 90_000, 400_000))}
    if kind == "Welcome":
        limits = draw(st.none() | st.builds(
            lambda u, m, r, b: {"max_unacked": u, "max_message_size": m,
                                "max_messages_per_second": r, "max_bytes_per_second": b},
            _one_of(0, 1, 2, 5), _one_of(0, 4096, 1 << 20), _one_of(0, 0, 1, 3, 7),
            _one_of(0, 0, 2, 100)))
        return {"type": "Welcome", "session_id": draw(_one_of("s1", "s2")),
                "resume_token": draw(_one_of("aa", "bb")),
                "resumed": draw(st.booleans()),
                "recovery": draw(st.lists(_recovery_json(), max_size=4)),
                "last_received_seq": draw(_ints(0, 5)),
                "heartbeat_interval_ms": draw(_one_of(0, 1000, 30000)),
                "heartbeat_timeout_ms": draw(_one_of(0, 5000, 70000)),
                "limits": limits,
                "fresh_reason": draw(_one_of("", "expired")),
                "server_time_ms": draw(_one_of(0, 50_000)),
                "credentials_expire_ms": draw(_one_of(0, 0, 60_000, 100_000)),
                "serializer": draw(_one_of("", "raw", "json"))}
    if kind == "Data":
        return {"type": "Data", "topic": draw(_any_topic), "position": draw(_position_json),
                "timestamp_ms": 7, "payload": draw(_one_of("", "01", "0203"))}
    if kind == "Ack":
        return {"type": "Ack", "seq": draw(_ints(0, 6))}
    if kind == "Subscribed":
        return {"type": "Subscribed", "request_id": draw(_request_ids),
                "recovery": draw(_recovery_json())}
    if kind == "Unsubscribed":
        return {"type": "Unsubscribed", "topic": draw(_any_topic), "request_id": draw(_request_ids)}
    if kind == "Error":
        return {"type": "Error", "code": draw(_one_of(3, 6, 10)), "message": "no",
                "request_id": draw(_request_ids)}
    if kind == "Goodbye":
        return {"type": "Goodbye", "code": draw(_one_of(0, 1, 2, 8, 10, 13, 17, 19)),
                "reason": "bye", "reconnect_after_ms": draw(_one_of(0, 2000))}
    if kind == "Ping":
        return {"type": "Ping", "id": draw(_ints(0, 3)), "timestamp_ms": 5}
    if kind == "Pong":
        return {"type": "Pong", "id": 1, "echo_timestamp_ms": 0, "timestamp_ms": 0}
    return {"type": "Presence", "topic": draw(_any_topic), "session_id": "s9",
            "action": draw(_one_of(0, 1))}


_STEP_KINDS = st.sampled_from([
    "connect", "disconnect", "send", "subscribe", "unsubscribe", "opened", "opened",
    "open_failed", "recv", "recv", "recv", "recv", "recv", "server_close", "drop", "timer",
    "timer", "token"])


@st.composite
def steps(draw: st.DrawFn) -> Json:
    kind = draw(_STEP_KINDS)
    step: Json = {"do": kind}
    if kind == "send":
        step["payload"] = draw(_one_of("", "61", "6162"))
        step["topic"] = draw(_one_of("", "a"))
    elif kind in ("subscribe", "unsubscribe"):
        step["topic"] = draw(_one_of(*TOPICS))
    elif kind == "recv":
        step["env"] = draw(envelopes())
    elif kind == "server_close":
        step["code"] = draw(_one_of(1000, 1001, 1011, 4001))
        step["reason"] = "x"
    elif kind == "token":
        step["token"] = draw(_one_of("t2", ""))
    return step


@st.composite
def traces(draw: st.DrawFn) -> Json:
    config = {
        "max_pending": draw(_one_of(3, 1000)),
        "max_message_size": draw(_one_of(1 << 20, 420)),
        "reconnect": {"initial_ms": 1000, "max_ms": 8000, "multiplier": 2,
                      "max_attempts": draw(_one_of(2, 10, None))},
        "random": draw(_one_of(0.0, 0.5, 0.999)),
        "refresh_tokens": draw(st.booleans()),
        "refresh_margin_ms": draw(_one_of(0, 30000)),
        "pace": draw(_one_of(0.9, 0.5, 0)),
        # $inbox acknowledgements: at once, after two, after 32, the default (128), never.
        "inbox_ack_every": draw(_one_of(1, 2, 32, 128, 0)),
        "inbox_ack_delay_ms": draw(_one_of(0, 1000)),
        # The Hello's serializer name: "" and "raw" send nothing, the others their name.
        "serializer": draw(_one_of("", "raw", "json", "msgpack", "my.proto+v2")),
    }
    # Most traces start by connecting and opening, so the server envelopes land on a session.
    prefix: list[Json] = []
    if draw(_ints(0, 9)) > 0:
        prefix = [{"do": "connect"}, {"do": "opened"}]
    body = draw(st.lists(steps(), min_size=1, max_size=30))
    t = 0
    out = []
    for step in prefix + body:
        t += draw(_one_of(0, 0, 1, 100, 1000, 5000, 30000, 70000))
        out.append({"t": t, **step})
    return {"config": config, "steps": out}
