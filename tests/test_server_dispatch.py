"""The adapters' per-message dispatch (``api.emit_server_event``) against the reference mapping
(``api.server_callbacks``): the same callbacks, in the same order, with the same arguments, for
every kind of hub event (a differential test of the fast path)."""

from __future__ import annotations

from typing import Any

import pytest

from sigma_core.api import emit_server_event, server_callbacks
from sigma_core.errors import RemoteProtocolError
from sigma_core.hub import (
    ClientConnected,
    ClientDisconnected,
    ClientErrorReceived,
    ClientMessage,
    ConnectionRejected,
    HookFailed,
    HubEvent,
    PresenceChanged,
    Session,
    SessionExpired,
)
from sigma_core.messages import Error, PresenceAction

SESSION = Session("s1", b"token", 0.0)

EVENTS: list[HubEvent] = [
    ClientMessage(session=SESSION, seq=7, topic="$inbox", payload=b"hello", timestamp_ms=12),
    ClientMessage(session=SESSION, seq=8, topic="chat", payload=b"", timestamp_ms=0),
    ClientConnected(session=SESSION, conn_id=3, resumed=True),
    ClientDisconnected(session=SESSION, conn_id=3, code=1001, reason="bye", cause=None,
                       session_ended=False),
    ClientDisconnected(session=SESSION, conn_id=3, code=1002, reason="",
                       cause=RemoteProtocolError("bad frame"), session_ended=True),
    ConnectionRejected(conn_id=4, code=1008, reason="origin", cause=None),
    SessionExpired(session=SESSION),
    PresenceChanged(topic="room", session=SESSION, action=PresenceAction.JOIN),
    PresenceChanged(topic="room", session=SESSION, action=PresenceAction.LEAVE),
    ClientErrorReceived(session=SESSION, error=Error(code=5, message="oops")),
    HookFailed(hook="authenticate", error=ValueError("no")),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_emit_server_event_makes_the_calls_server_callbacks_names(event: HubEvent) -> None:
    calls: list[tuple[str, tuple[Any, ...]]] = []
    emit_server_event(lambda name, *args: calls.append((name, args)), event)
    assert calls == server_callbacks(event)
    assert calls, "every event kind fires a callback"


def test_a_message_reaches_the_listener_with_its_payload_and_topic() -> None:
    calls: list[tuple[str, tuple[Any, ...]]] = []
    emit_server_event(lambda name, *args: calls.append((name, args)), EVENTS[0])
    assert calls == [("message", (SESSION, b"hello", "$inbox"))]
