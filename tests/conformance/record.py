"""Write the named conformance traces (tests/conformance/*.json) with the reference client's
outputs as their ``expect``. Run after changing a trace or, deliberately, the reference client:
``.venv/bin/python tests/conformance/record.py``; review the diff of the JSON files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conformance_support import PythonDriver

HERE = Path(__file__).resolve().parent
E1 = 1


def pos(offset: int, epoch: int = E1) -> dict[str, int]:
    return {"epoch": epoch, "offset": offset}


def rec(topic: str, status: int, offset: int | None, **extra: Any) -> dict[str, Any]:
    return {"topic": topic, "status": status,
            "position": None if offset is None else pos(offset), **extra}


RECOVERED, FAILED, FRESH = 0, 1, 2


def welcome(resumed: bool, *recovery: dict[str, Any], sid: str = "s1",
            last: int = 0, reason: str = "") -> dict[str, Any]:
    return {"do": "recv", "env": {
        "type": "Welcome", "session_id": sid, "resume_token": "aa", "resumed": resumed,
        "recovery": [rec("$all", FRESH if not resumed else RECOVERED, 0),
                     rec("$inbox", FRESH if not resumed else RECOVERED, 0), *recovery],
        "last_received_seq": last, "heartbeat_interval_ms": 0, "fresh_reason": reason}}


def limited(step: dict[str, Any], max_message_size: int) -> dict[str, Any]:
    """A Welcome step whose Limits carry ``max_message_size``."""
    step["env"]["limits"] = {"max_unacked": 0, "max_message_size": max_message_size}
    return step


def data(topic: str, offset: int, epoch: int = E1) -> dict[str, Any]:
    return {"do": "recv", "env": {"type": "Data", "topic": topic, "position": pos(offset, epoch),
                                  "timestamp_ms": 5, "payload": f"{offset:02x}"}}


def subscribed(request_id: int, topic: str, status: int, offset: int) -> dict[str, Any]:
    return {"do": "recv", "env": {"type": "Subscribed", "request_id": request_id,
                                  "recovery": rec(topic, status, offset)}}


def unsubscribed(request_id: int, topic: str) -> dict[str, Any]:
    return {"do": "recv", "env": {"type": "Unsubscribed", "request_id": request_id,
                                  "topic": topic}}


CONNECT = [{"do": "connect"}, {"do": "opened"}]
# The link drops; with random 0.5 the first reconnect waits 500 ms.
DROP_AND_BACK = [{"do": "drop"}, {"do": "timer", "dt": 500}, {"do": "opened"}]

TRACES: dict[str, dict[str, Any]] = {
    "leave_room_offline": {
        "about": "Leave a room while offline: after the resume the room stays left, nothing "
                 "of it is delivered (the server's replay of it is dropped) and the client "
                 "asks the server, which still holds it, to drop it; the other room resumes.",
        "steps": [*CONNECT, welcome(False),
                  {"do": "subscribe", "topic": "a"}, {"do": "subscribe", "topic": "b"},
                  subscribed(1, "a", FRESH, 0), subscribed(2, "b", FRESH, 0),
                  data("a", 1), data("b", 1), *DROP_AND_BACK[:1],
                  {"do": "unsubscribe", "topic": "a"}, *DROP_AND_BACK[1:],
                  welcome(True, rec("a", RECOVERED, 1, replayed=1),
                          rec("b", RECOVERED, 1, replayed=1)),
                  data("a", 2), data("b", 2), unsubscribed(4, "a"), data("b", 3)]},
    "unsubscribe_offline_then_resubscribe": {
        "about": "Unsubscribe while offline keeps the topic's position until the server "
                 "confirms: re-subscribing before the resume sends that position, so the "
                 "resume neither replays the topic from its start nor loses it.",
        "steps": [*CONNECT, welcome(False), {"do": "subscribe", "topic": "a"},
                  subscribed(1, "a", FRESH, 0), data("a", 1), data("a", 2), data("a", 3),
                  DROP_AND_BACK[0], {"do": "unsubscribe", "topic": "a"},
                  {"do": "subscribe", "topic": "a"}, *DROP_AND_BACK[1:],
                  welcome(True, rec("a", RECOVERED, 3, replayed=1)), data("a", 4)]},
    "superseded_answers": {
        "about": "subscribe, unsubscribe, subscribe, unsubscribe in a row: only the answer to "
                 "the latest request decides; the earlier answers are ignored.",
        "steps": [*CONNECT, welcome(False),
                  {"do": "subscribe", "topic": "a"}, {"do": "unsubscribe", "topic": "a"},
                  {"do": "subscribe", "topic": "a"}, {"do": "unsubscribe", "topic": "a"},
                  subscribed(1, "a", FRESH, 0), unsubscribed(2, "a"),
                  subscribed(3, "a", RECOVERED, 0), data("a", 1), unsubscribed(4, "a"),
                  data("a", 2)]},
    "resume_hello_fits_limit": {
        "about": "With a 420-byte message limit a third topic would make the resuming Hello "
                 "too large: subscribe() refuses it with LocalProtocolError.",
        "config": {"max_message_size": 420},
        "steps": [{"do": "subscribe", "topic": "room-one"}, {"do": "subscribe", "topic": "room-2"},
                  {"do": "subscribe", "topic": "room-three-is-long"}, *CONNECT, welcome(False)]},
    "server_adds_unsubscribed_topics": {
        "about": "A server (or anything on a plain ws:// path) announces topics the client never "
                 "subscribed to. With a 310-byte message limit (the Welcome's) a server-side "
                 "room that fits "
                 "('room-2') is kept; a foreign '$junk' and rooms that would make the resuming "
                 "Hello too large (in the Welcome and as a Subscribed with request id 0) are "
                 "ignored: no position, no event, their messages dropped; the next Hello carries "
                 "only $all, $inbox and the kept rooms.",
        "steps": [{"do": "subscribe", "topic": "room-one"}, *CONNECT,
                  limited(welcome(False, rec("room-2", FRESH, 0), rec("$junk", FRESH, 0),
                                  rec("room-three-is-long", FRESH, 0)), 310),
                  subscribed(2, "room-one", FRESH, 0),
                  subscribed(0, "room-four-is-long-too", FRESH, 0),
                  data("room-three-is-long", 1), data("room-four-is-long-too", 1),
                  data("$junk", 1), data("room-2", 1), data("room-one", 1), *DROP_AND_BACK]},
    "reconcile_latest_request_wins": {
        "about": "Requests unanswered when the link drops are made again after the Welcome "
                 "from what the app wants now: a wanted 'b' the server lacks is subscribed, a "
                 "left 'a' the server holds is unsubscribed.",
        "steps": [*CONNECT, welcome(False), {"do": "subscribe", "topic": "a"},
                  subscribed(1, "a", FRESH, 0), {"do": "subscribe", "topic": "b"},
                  {"do": "unsubscribe", "topic": "a"}, *DROP_AND_BACK,
                  welcome(True, rec("a", RECOVERED, 0))]},
    "recovery_position_rule": {
        "about": "protocol.md §6.4: Recovered and Fresh only move a position forward (a "
                 "replay already seen is not delivered twice); Failed and a new epoch "
                 "replace it.",
        "steps": [*CONNECT, welcome(False), {"do": "subscribe", "topic": "a"},
                  subscribed(1, "a", FRESH, 0), data("a", 1), data("a", 2),
                  # Re-subscribing without a position replays from the subscription start.
                  {"do": "subscribe", "topic": "a"}, subscribed(2, "a", FRESH, 0),
                  data("a", 1), data("a", 2), data("a", 3),
                  *DROP_AND_BACK,
                  welcome(True, {"topic": "a", "status": FAILED, "position": pos(5, 2),
                                 "lost_from": 4, "lost_to": 0}),
                  data("a", 5, epoch=2), data("a", 6, epoch=2)]},
    "pacing_every_envelope": {
        "about": "Welcome.limits of 5 msgs/s (paced to 4.5, two kept for heartbeats: 2.5 at "
                 "once): subscribes, a token refresh and messages queue in turn, requests "
                 "before Data; a Pong sent meanwhile is never held back but is charged.",
        "config": {"pace": 0.9, "refresh_tokens": True},
        "steps": [*CONNECT,
                  {"do": "recv", "env": {**welcome(False)["env"], "limits": {
                      "max_unacked": 0, "max_message_size": 0, "max_messages_per_second": 5,
                      "max_bytes_per_second": 0}}},
                  {"do": "send", "payload": "61", "topic": ""},
                  {"do": "subscribe", "topic": "a"}, {"do": "subscribe", "topic": "b"},
                  {"do": "send", "payload": "62", "topic": ""},
                  {"do": "token", "token": "t2"},
                  {"do": "recv", "env": {"type": "Ping", "id": 1, "timestamp_ms": 5}},
                  {"do": "timer", "dt": 250}, {"do": "timer", "dt": 250},
                  {"do": "timer", "dt": 250}, {"do": "timer", "dt": 250},
                  {"do": "timer", "dt": 500}]},
    "inbox_acks": {
        "about": "protocol.md §7, inbox acknowledgements: with inbox_ack_every 3 the third "
                 "$inbox message is acknowledged at once (Ack with the $inbox position, no "
                 "seq); a fourth waits inbox_ack_delay (1 s) and is acknowledged by the timer; "
                 "room messages are never acknowledged; one that arrived unacknowledged before "
                 "the link dropped is acknowledged 1 s after the resumed Welcome.",
        "config": {"inbox_ack_every": 3, "inbox_ack_delay_ms": 1000},
        "steps": [*CONNECT, welcome(False), {"do": "subscribe", "topic": "a"},
                  subscribed(1, "a", FRESH, 0), data("$inbox", 1), data("a", 1),
                  data("$inbox", 2), data("$inbox", 3), data("$inbox", 4),
                  {"do": "timer", "dt": 1000}, data("$inbox", 5), *DROP_AND_BACK,
                  welcome(True, rec("a", RECOVERED, 1)), {"do": "timer", "dt": 1000}]},
}


def main() -> None:
    for name, trace in TRACES.items():
        t = 0
        steps = []
        for given in trace["steps"]:
            step = dict(given)
            t += step.pop("dt", 10)
            steps.append({"t": t, **step})
        out = {"about": trace["about"], "config": trace.get("config", {}), "steps": steps}
        out["expect"] = PythonDriver().run(out)["steps"]
        (HERE / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
