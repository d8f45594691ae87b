"""One codec, proven on both sides: sigma_core.codec and clients/js/src/codec.ts.

Every seed in fuzz/corpus/codec, a hypothesis stream of valid envelopes and a stream of mutated
ones go through both decoders (the TypeScript one in one long-lived Node process): the same
accept/reject decision, the same error class, the same field values. The TypeScript encoder
writes the same bytes as Python's. Neither decoder raises anything but its documented error
(DecodeError, UnknownMessageType being one) and neither hangs: every answer has a deadline.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conformance_support import NodeDriver, build_js, canonical, node_available
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codec import BODIES
from test_codec_fuzz import WIRES, mutate, mutations

from sigma_core import codec
from sigma_core.errors import DecodeError
from sigma_core.messages import Hello, Presence

CORPUS = Path(__file__).resolve().parent.parent / "fuzz" / "corpus" / "codec"
N = int(os.environ.get("SIGMA_CROSSCHECK_EXAMPLES", "600"))
CHECK = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))

_why = node_available()
if _why is not None and os.environ.get("CI"):
    raise RuntimeError(f"the codec cross-check needs Node: {_why}")
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


@pytest.fixture(scope="module")
def node() -> Iterator[NodeDriver]:
    build_js()
    driver = NodeDriver()
    yield driver
    driver.close()


def python_decode(buf: bytes) -> dict[str, Any]:
    try:
        return {"ok": canonical(codec.decode(buf))}
    except DecodeError as exc:  # UnknownMessageType included
        return {"error": type(exc).__name__}


def same_decode(node: NodeDriver, buf: bytes) -> dict[str, Any]:
    py = python_decode(buf)
    ts = node.request({"decode": buf.hex()}, timeout=10)
    assert ts.get("error") in (None, "DecodeError", "UnknownMessageType"), \
        f"the TS decoder threw an undocumented {ts['error']}: {ts.get('message')} ({buf.hex()})"
    ts.pop("message", None)
    assert ts == py, f"decoders disagree on {buf.hex()}"
    return py


def test_corpus_seeds(node: NodeDriver) -> None:
    seeds = sorted(CORPUS.iterdir())
    assert len(seeds) >= 15
    outcomes = {}
    for seed in seeds:
        outcomes[seed.name] = "ok" in same_decode(node, seed.read_bytes())
    # The seeds named bad_* are rejected by both; every other one is accepted by both.
    assert outcomes == {name: not name.startswith("bad_") for name in outcomes}


def test_every_truncation_and_byte_flip_of_the_seeds(node: NodeDriver) -> None:
    for wire in WIRES[:6]:
        for end in range(0, len(wire), 3):
            same_decode(node, wire[:end])
        for at in range(0, len(wire), 5):
            flipped = bytearray(wire)
            flipped[at] ^= 0x80
            same_decode(node, bytes(flipped))


def test_offset_loops_are_rejected_quickly(node: NodeDriver) -> None:
    """Crafted buffers whose offsets point back at themselves: a vtable at the table, a
    table that is its own vtable, a union offset to the root, a vector of offsets to itself."""
    crafted = [
        struct.pack("<I", 8) + b"SGM1" + struct.pack("<i", 0) + b"\0" * 8,
        struct.pack("<I", 8) + b"SGM1" + struct.pack("<iHH", -4, 8, 8) + b"\0" * 4,
        struct.pack("<I", 12) + b"SGM1" + struct.pack("<HHHH", 8, 9, 4, 6)
        + struct.pack("<iBxxx", 4, 3) + struct.pack("<i", -12),
    ]
    for wire in WIRES:
        for at in range(0, len(wire) - 3, 4):
            looped = bytearray(wire)
            struct.pack_into("<I", looped, at, 0)  # every uoffset that lands here points at itself
            crafted.append(bytes(looped))
    for buf in crafted:
        same_decode(node, buf)


def _js_order(mapping: Mapping[str, str]) -> dict[str, str]:
    """The order a JavaScript object iterates these keys in: integer-like keys ("0", "7")
    first, ascending, then the others as inserted (ECMA-262 OrdinaryOwnPropertyKeys)."""
    def index(key: str) -> int | None:
        return int(key) if key.isascii() and key.isdigit() and str(int(key)) == key \
            and int(key) < 2**32 - 1 \
            else None
    numeric = sorted((k for k in mapping if index(k) is not None), key=int)
    return {k: mapping[k] for k in [*numeric, *(k for k in mapping if index(k) is None)]}


def js_ordered(body: Any) -> Any:
    """``body`` with its metadata maps in JavaScript's key order. A TS writer's metadata is a
    plain object, so it cannot keep another order (a reader must not depend on metadata order;
    docs/conformance-traces.md); for the same pairs in the same order the bytes are equal."""
    if isinstance(body, Presence):
        return dataclasses.replace(body, metadata=_js_order(body.metadata))
    if isinstance(body, Hello) and body.client is not None:
        client = dataclasses.replace(body.client, metadata=_js_order(body.client.metadata))
        return dataclasses.replace(body, client=client)
    return body


@CHECK
@given(data=st.data(), kind=st.sampled_from(list(BODIES)))
def test_valid_envelopes_decode_and_encode_alike(node: NodeDriver, data: st.DataObject,
                                                 kind: Any) -> None:
    body = js_ordered(data.draw(BODIES[kind]))
    wire = codec.encode(body)
    decoded = same_decode(node, wire)
    assert "ok" in decoded
    answer = node.request({"encode": canonical(body)}, timeout=10)
    assert answer.get("hex") == wire.hex(), f"TS encoder differs for {body!r}: {answer}"


@CHECK
@given(wire=st.sampled_from(WIRES), steps=st.lists(mutations, min_size=1, max_size=4))
def test_mutated_envelopes_alike(node: NodeDriver, wire: bytes,
                                 steps: list[tuple[str, int, object]]) -> None:
    same_decode(node, bytes(mutate(wire, steps)))
