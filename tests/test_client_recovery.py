"""protocol.md §6.3/§6.4 end to end, Python client against the hub: the lost range of a resume
position beyond the head, and the client rule that a Failed recovery replaces the position (so
the live messages that reuse those offsets are delivered, not dropped as duplicates)."""

from __future__ import annotations

from sigma_core.client import RecoveryFailed
from sigma_core.connection import ClientConnection, Welcomed
from sigma_core.entropy import SeededEntropy
from sigma_core.hub import Hub, HubConfig
from sigma_core.messages import Hello, StreamPosition, Welcome
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


def _welcome_for(hello: Hello, hub: Hub) -> Welcome:
    conn_id = hub.open_connection(0.0)
    client = ClientConnection(host="h", hello=hello, now=0.0)
    welcomed: list[Welcome] = []
    for _ in range(5):  # upgrade, Hello, Welcome
        out = b"".join(client.data_to_send())
        if out:
            hub.receive_data(conn_id, out, 0.0)
        for _, chunks, _ in hub.flush(0.0):
            client.receive_data(b"".join(chunks), 0.0)
        welcomed += [e.welcome for e in client.events_received() if isinstance(e, Welcomed)]
    assert len(welcomed) == 1
    return welcomed[0]


def test_hello_with_only_an_id_or_only_a_token_is_a_failed_resume() -> None:
    """protocol.md §5.1: half a resume is a failed resume (resumed=False with the fresh_reason),
    not a plain new session."""
    hub = Hub(HubConfig(), entropy=SeededEntropy(7), now=0.0)
    plain = _welcome_for(Hello(), hub)
    assert (plain.resumed, plain.fresh_reason) == (False, "")
    for hello in (Hello(session_id=plain.session_id), Hello(resume_token=plain.resume_token)):
        welcome = _welcome_for(hello, hub)
        assert welcome.resumed is False
        assert welcome.fresh_reason.startswith("session could not be resumed")
        assert welcome.session_id != plain.session_id
    assert hub.stats(0.0).failed_resumes == 2
