"""A resume never changes whose session it is (protocol.md §5.2): a Hello with the right
session id and resume token whose credentials name another identity gets a *new* session
(``resumed = false``, a ``fresh_reason`` saying why), and the owner keeps its own -- the same
on the in-memory engine and on a cluster engine, where the session comes from its stored
record (held equal here on both)."""

from __future__ import annotations

import pytest

from sigma_core.client import Disconnected, SessionReset
from sigma_core.hub import AuthAccept, AuthRequest, ClientConnected, HubConfig
from sigma_core.testing import ClusterSimulation, SimClient, Simulation, client_config


def _by_token(request: AuthRequest) -> AuthAccept:
    return AuthAccept(identity=request.hello.auth_token)


def _resume_as(sim: Simulation, owner: SimClient, identity: str) -> SimClient:
    thief = sim.add_client(client_config(auth_token=identity), connect=False)
    thief.session.session_id = owner.session.session_id
    thief.session._token = owner.session._token
    thief.session.positions = dict(owner.session.positions)
    if isinstance(sim, ClusterSimulation):
        sim.pin(thief, 1)  # another node: the session comes from the engine's record
    thief.connect()
    sim.run_until(lambda: thief.connected)
    return thief


@pytest.mark.parametrize("engine", ["memory", "cluster"])
def test_a_resume_with_another_identity_gets_a_fresh_session(engine: str) -> None:
    config = HubConfig(authenticate=_by_token)
    sim: Simulation = ClusterSimulation(2, config, seed=5) if engine == "cluster" \
        else Simulation(config, seed=5)
    alice = sim.add_client(client_config(auth_token="alice"), connect=False)
    if isinstance(sim, ClusterSimulation):
        sim.pin(alice, 0)
    alice.connect()
    sim.run_until(lambda: alice.connected)
    sim.run(1.0)  # (on a cluster, the session record is saved)

    mallory = _resume_as(sim, alice, "mallory")
    [reset] = mallory.of_type(SessionReset)
    assert reset.old_session_id == alice.session.session_id
    assert mallory.session.session_id != alice.session.session_id
    assert reset.reason == "session could not be resumed: it belongs to another identity"
    connected = [e for e in sim.hub_events if isinstance(e, ClientConnected)]
    assert [(e.resumed, e.session.identity) for e in connected] == [(False, "alice"),
                                                                    (False, "mallory")]
    sim.run(1.0)
    assert alice.connected
    assert not list(alice.of_type(Disconnected))

    # The owner's own resume still works, with the same identity.
    again = _resume_as(sim, alice, "alice")
    assert again.session.session_id == alice.session.session_id
    assert not list(again.of_type(SessionReset))
