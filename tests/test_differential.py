"""Differential conformance: the TypeScript ClientSession (clients/js/src/session.ts) and the
Python one (sigma_core.client) run the same traces and must produce the same outputs, step by
step: return values, events, envelopes sent (byte for byte) and the next timer deadline.

Traces: the named regression traces in tests/conformance/*.json (each also checked against its
recorded ``expect``), and a hypothesis stream (SIGMA_CONFORMANCE_TRACES, default 2000; the
longer run in docs/conformance-traces.md uses 50000). The format is docs/conformance-traces.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from conformance_support import (
    NodeDriver,
    PythonDriver,
    build_js,
    first_difference,
    load_traces,
    node_available,
    traces,
)
from hypothesis import HealthCheck, given, settings

from sigma_core import codec
from sigma_core.messages import Ack, Subscribe, Unsubscribe

N_TRACES = int(os.environ.get("SIGMA_CONFORMANCE_TRACES", "2000"))

_why = node_available()
if _why is not None and os.environ.get("CI"):
    raise RuntimeError(f"the differential tests need Node: {_why}")
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

NAMED = load_traces()


@pytest.fixture(scope="module")
def node() -> Iterator[NodeDriver]:
    build_js()
    driver = NodeDriver()
    yield driver
    driver.close()


def events_of(result: Any, kind: str) -> list[Any]:
    return [e[kind] for step in result["steps"] for e in step["events"] if kind in e]


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_trace(name: str, node: NodeDriver) -> None:
    """Each committed trace: Python and TypeScript equal, and both equal the recorded outputs."""
    trace = NAMED[name]
    py = PythonDriver().run(trace)
    ts = node.run(trace)
    diff = first_difference(trace, py, ts)
    assert diff is None, f"{name}: the clients differ\n{diff}"
    assert py["steps"] == trace["expect"], f"{name}: outputs differ from the recorded ones"


def test_left_offline_stays_left() -> None:
    """leave_room_offline: after the resume nothing of the left room is delivered, and the
    client asks the server (which still holds it) to drop it."""
    trace = NAMED["leave_room_offline"]
    result = PythonDriver().run(trace)
    left_at = next(i for i, s in enumerate(trace["steps"]) if s["do"] == "unsubscribe")
    later = {"steps": result["steps"][left_at:]}
    assert [(m["topic"], m["position"][1]) for m in events_of(later, "message")] == [
        ("b", 2), ("b", 3)]
    assert events_of(later, "subscribed") == []
    assert events_of(result, "unsubscribed") == [{"topic": "a", "request_id": 4}]
    welcome_step = next(s for s in result["steps"] if any("connected" in e for e in s["events"])
                        and s["sends"])
    assert [codec.decode(bytes.fromhex(h)) for h in welcome_step["sends"]] == [
        Unsubscribe(topic="a", request_id=4)]


def test_unsubscribe_offline_keeps_position() -> None:
    result = PythonDriver().run(NAMED["unsubscribe_offline_then_resubscribe"])
    # No replay of offsets 1..3 of "a" after the resubscribe: the kept position was sent.
    offsets = [m["position"][1] for m in events_of(result, "message") if m["topic"] == "a"]
    assert offsets == [1, 2, 3, 4]


def test_superseded_answers_ignored() -> None:
    result = PythonDriver().run(NAMED["superseded_answers"])
    assert events_of(result, "subscribed") == []
    assert [e["topic"] for e in events_of(result, "unsubscribed")] == ["a"]


def test_resume_hello_fits() -> None:
    result = PythonDriver().run(NAMED["resume_hello_fits_limit"])
    errors = [s["result"] for s in result["steps"] if isinstance(s["result"], dict)]
    assert errors == [{"error": "LocalProtocolError"}]


def test_reconcile_latest_request_wins() -> None:
    result = PythonDriver().run(NAMED["reconcile_latest_request_wins"])
    # After the second Welcome the client, which wants "b" only, fixes the server's view.
    sent = [codec.decode(bytes.fromhex(h)) for h in result["steps"][-1]["sends"]]
    assert sent == [Subscribe(topic="b", request_id=4), Unsubscribe(topic="a", request_id=5)]


def test_recovery_rule_by_status() -> None:
    """§6.4: Recovered and Fresh only move a position forward; Failed and a new epoch replace
    it. A replay already seen is never delivered twice."""
    result = PythonDriver().run(NAMED["recovery_position_rule"])
    offsets = [tuple(m["position"]) for m in events_of(result, "message")]
    assert offsets == [(1, 1), (1, 2), (1, 3), (2, 6)]


@settings(max_examples=N_TRACES, deadline=None, derandomize=not os.environ.get("SIGMA_RANDOM"),
          suppress_health_check=list(HealthCheck))
@given(trace=traces())
def test_generated_traces_equal(trace: Any, node: NodeDriver) -> None:
    py = PythonDriver().run(trace)
    ts = node.run(trace)
    diff = first_difference(trace, py, ts)
    assert diff is None, f"the clients differ\n{diff}"


def test_inbox_acks_trace() -> None:
    """inbox_acks: the $inbox positions acknowledged, in order (every 3rd at once, the rest
    after inbox_ack_delay, the one left before a drop after the resumed Welcome); no seq."""
    result = PythonDriver().run(NAMED["inbox_acks"])
    acks = [body for step in result["steps"] for h in step["sends"]
            if isinstance(body := codec.decode(bytes.fromhex(h)), Ack)]
    assert [(a.seq, [(p.topic, p.position.offset) for p in a.positions]) for a in acks] == [
        (0, [("$inbox", 3)]), (0, [("$inbox", 4)]), (0, [("$inbox", 5)])]
