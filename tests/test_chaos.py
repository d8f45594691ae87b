"""The chaos run (``bench/chaos.py``), bounded: 6 clients for 6 s per backend through a proxy
that cuts connections at random (RST, mid-frame, blackholes, half-closes, refusals), with
fixed seeds. Every message, both ways and on every topic, must arrive exactly once and in
order, with no RecoveryFailed, SessionReset or fresh session; and the proxy must really have
cut connections, and the clients resumed, or the run proves nothing.

The receivers' bookkeeping is checked first, on its own: a checker that cannot see a loss
would make the run pass whatever happens.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import chaos  # noqa: E402

#: (backend, seed): one fixed seed per backend.
RUNS = [("asyncio", 11), ("trio", 12)]


def test_stream_check_counts_loss_duplicates_and_reordering() -> None:
    check = chaos.StreamCheck()
    for n in (1, 2, 4, 3, 3, 6):
        check.observe(n)
    # 4, 3 and 6 each arrived when another was next; the second 3 is a duplicate.
    assert (check.duplicated, check.reordered, check.top) == (1, 3, 6)
    assert check.lost(7) == 2  # 5 never came, nor 7
    assert check.received(4) == 4


def test_payloads_round_trip_and_torn_ones_are_refused() -> None:
    for n in (1, 13, 255, 1000):
        data = chaos.encode(b"e", 3, n)
        assert chaos.decode(data, b"e", 2) == (3, n)
        assert chaos.decode(data[:-1], b"e", 2) is None
        assert chaos.decode(data + b"x", b"e", 2) is None
    assert chaos.decode(chaos.encode(b"r", 5), b"b", 1) is None


@pytest.mark.parametrize(("backend", "seed"), RUNS)
def test_chaos_run_delivers_everything_once_in_order(backend: str, seed: int) -> None:
    config = chaos.ChaosConfig(backend=backend, seed=seed, clients=6, duration=6.0,
                               mean_cut_interval=1.5, settle=10.0)

    async def bounded() -> chaos.Result:
        with anyio.fail_after(30):
            return await chaos.run_backend(config)

    result = anyio.run(bounded, backend=backend)
    report = chaos.table([result])
    assert result.failures == [], report
    for name, flow in result.flows.items():
        assert flow["sent"] > 0, name
        assert flow["received"] == flow["sent"], report
    # The run must have been chaotic: cuts of several kinds, each followed by a resume.
    assert result.total_cuts >= 5, report
    assert len({kind.split()[0] for kind in result.cuts} - {"missed"}) >= 3, report
    assert result.clients_seen["resumed"] >= 5, report
