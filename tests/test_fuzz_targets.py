"""The fuzz targets (fuzz/targets.py) in CI: every committed seed, then a bounded search.

Each target enforces the fuzz contract itself (any input is accepted or rejected with a
documented error; anything else, including a broken invariant, is a finding). Here they run on:

* every seed in ``fuzz/corpus/<target>/`` — none may be a finding;
* random bytes, and seeds mutated the way a fuzzer does (bytes flipped, inserted, deleted,
  overwritten with boundary values, two seeds spliced), a bounded number of examples with a
  fixed random stream, so the whole file stays well under 40 s.

A finding that is already known (its minimized reproducer is in ``fuzz/findings/<target>/`` and
still fails) is tolerated by its :func:`~fuzz.targets.signature` in the searches, so that CI
stays green on a known core bug and fails only on a new one; the reproducers run as xfail
tests, which pass (XPASS) once the bug is fixed: then delete the reproducer (or move it to the
corpus as a regression seed).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import targets  # noqa: E402
from sigma_core import codec  # noqa: E402
from sigma_core.messages import Data  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"
NAMES = sorted(targets.TARGETS)


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix != ".txt")


@cache
def seeds(name: str) -> tuple[bytes, ...]:
    return tuple(p.read_bytes() for p in _files(CORPUS / name))


@cache
def known(name: str) -> frozenset[str]:
    return frozenset(targets.known_findings(name))


def run(name: str, data: bytes) -> None:
    targets.run_tolerating(name, data, known(name))


# ----------------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("name", NAMES)
def test_every_target_has_a_seed_corpus(name: str) -> None:
    assert len(seeds(name)) >= 8, f"fuzz/corpus/{name}: run fuzz/make_seeds.py"


SEED_FILES = [(name, path) for name in NAMES for path in _files(CORPUS / name)]


@pytest.mark.parametrize(("name", "path"), SEED_FILES, ids=[f"{n}/{p.name}" for n, p in SEED_FILES])
def test_seed_is_not_a_finding(name: str, path: Path) -> None:
    targets.TARGETS[name](path.read_bytes())  # no tolerance: a seed must pass outright


def test_no_known_finding_is_pending() -> None:
    """Every finding was fixed and turned into a regress_* seed; a new reproducer saved under
    fuzz/findings/ fails here until the bug is fixed."""
    pending = [path for name in NAMES for path in _files(targets.FINDINGS / name)]
    assert pending == []


def test_signature_names_the_bug_not_the_input() -> None:
    def failure(seq: int) -> BaseException:
        try:
            codec.encode(Data(seq=seq))
        except Exception as exc:
            return exc
        raise AssertionError("no exception")

    low, high = failure(-1), failure(2**64)
    assert str(low) != str(high)
    assert targets.signature(low) == targets.signature(high)
    assert "codec." in targets.signature(low)
    finding = targets.Finding("chunking changed event 3: ...", key="chunking: a became b")
    assert targets.signature(finding) == "chunking: a became b"


# ----------------------------------------------------------------------------- the search


@st.composite
def mutated(draw: st.DrawFn, pool: tuple[bytes, ...]) -> bytes:
    """A seed changed a few times the way a mutational fuzzer would."""
    data = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "set", "insert", "delete", "splice")))
        n = len(data)
        if op == "flip" and n:
            data[draw(st.integers(0, n - 1))] ^= draw(st.integers(1, 255))
        elif op == "set" and n:
            data[draw(st.integers(0, n - 1))] = draw(st.sampled_from((0, 1, 0x7F, 0x80, 0xFF)))
        elif op == "insert":
            at = draw(st.integers(0, n))
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and n:
            at = draw(st.integers(0, n - 1))
            del data[at : draw(st.integers(at + 1, min(n, at + 64)))]
        elif op == "splice":
            other = draw(st.sampled_from(pool))
            data = data[: draw(st.integers(0, n))] + other[draw(st.integers(0, len(other))) :]
    return bytes(data)


def _search(max_examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_search(1500)
@given(data=st.binary(max_size=4096))
def test_codec_random_bytes(data: bytes) -> None:
    run("codec", data)


@_search(1500)
@given(data=mutated(seeds("codec")))
def test_codec_mutated_seeds(data: bytes) -> None:
    run("codec", data)


@_search(600)
@given(data=st.binary(max_size=4096))
def test_server_connection_random_bytes(data: bytes) -> None:
    run("server_connection", data)


@_search(800)
@given(data=mutated(seeds("server_connection")))
def test_server_connection_mutated_seeds(data: bytes) -> None:
    run("server_connection", data)


@_search(600)
@given(data=st.binary(max_size=4096))
def test_client_connection_random_bytes(data: bytes) -> None:
    run("client_connection", data)


@_search(800)
@given(data=mutated(seeds("client_connection")))
def test_client_connection_mutated_seeds(data: bytes) -> None:
    run("client_connection", data)


@_search(400)
@given(data=st.binary(max_size=4096))
def test_hub_random_bytes(data: bytes) -> None:
    run("hub", data)


@_search(600)
@given(data=mutated(seeds("hub")))
def test_hub_mutated_seeds(data: bytes) -> None:
    run("hub", data)


@_search(400)
@given(data=st.binary(max_size=4096))
def test_client_session_random_bytes(data: bytes) -> None:
    run("client_session", data)


@_search(600)
@given(data=mutated(seeds("client_session")))
def test_client_session_mutated_seeds(data: bytes) -> None:
    run("client_session", data)


@pytest.mark.parametrize("name", ["server_connection", "hub"])
@pytest.mark.parametrize("check", ["output", "memory"])
def test_the_amplification_checks_report_a_breach(name: str, check: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With the cost model's constants at zero, every seed that gets an answer breaks it: the
    checks run inside the target (so a fuzzer reports a breach as a finding)."""
    if check == "output":
        for constant in ("OUTPUT_PER_INPUT_BYTE", "OUTPUT_PER_SOCKET", "OUTPUT_PER_TIMER"):
            monkeypatch.setattr(targets, constant, 0)
    else:
        for constant in ("ALLOC_PER_INPUT_BYTE", "ALLOC_PER_MESSAGE", "ALLOC_PER_CALL"):
            monkeypatch.setattr(targets, constant, 0)
    breaches = []
    for seed in seeds(name):
        try:
            targets.TARGETS[name](seed)
        except targets.Finding as finding:
            if finding.key.startswith(f"amplification: {check}"):
                breaches.append(finding)
    assert breaches, f"no seed of {name} broke a zero {check} bound"
