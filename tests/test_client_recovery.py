"""protocol.md §6.3/§6.4 end to end, Python client against the hub: the lost range of a resume
position beyond the head, and the client rule that a Failed recovery replaces the position (so
the live messages that reuse those offsets are delivered, not dropped as duplicates)."""

from __future__ import annotations

from sigma_core.client import RecoveryFailed
from sigma_core.messages import StreamPosition
from sigma_core.testing import Simulation


def test_resume_position_beyond_the_head_in_the_same_epoch() -> None:
    sim = Simulation()
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    for i in range(3):
        sim.hub.broadcast(b"%d" % i, sim.now)
    sim.run(1)
    assert alice.payloads() == [b"0", b"1", b"2"]
    head = alice.session.positions["$all"]
    sim.cut(alice)
    # A client that claims to have seen offsets the server never wrote (a server whose
    # backplane lost its tail looks the same from the client's side).
    alice.session.positions["$all"] = StreamPosition(head.epoch, 1000)
    sim.run_until(lambda: alice.connected)
    failed = [e for e in alice.of_type(RecoveryFailed) if e.topic == "$all"]
    assert [(f.lost_from, f.lost_to, f.position) for f in failed] == [
        (head.offset + 1, 1000, head)]
    assert failed[0].lost_from <= failed[0].lost_to
    # Failed replaces the stored position: offset 4 (<= 1000) is delivered, not dropped.
    sim.hub.broadcast(b"live", sim.now)
    sim.run(1)
    assert alice.payloads()[-1] == b"live"
    assert alice.session.positions["$all"] == StreamPosition(head.epoch, head.offset + 1)
