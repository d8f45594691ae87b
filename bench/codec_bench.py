"""Codec micro-benchmark: ns per operation, the generic builder/reader against the fast paths.

Run with ``.venv/bin/python bench/codec_bench.py``. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import timeit

from sigma_core import codec
from sigma_core.messages import Ack, Data, StreamPosition

PAYLOAD = bytes(range(256)) * 4  # 1 KiB
SERVER_DATA = Data(
    topic="room/42",
    position=StreamPosition(3, 123_456),
    timestamp_ms=1_700_000_000_000,
    payload=PAYLOAD,
)
CLIENT_DATA = Data(topic="room/42", seq=981, timestamp_ms=1_700_000_000_000, payload=PAYLOAD)
ACK = Ack(seq=981)

NAMESPACE = {
    "codec": codec,
    "SERVER_DATA": SERVER_DATA,
    "CLIENT_DATA": CLIENT_DATA,
    "ACK": ACK,
    "PAYLOAD": PAYLOAD,
    "SERVER_WIRE": codec.encode(SERVER_DATA),
    "ACK_WIRE": codec.encode(ACK),
}

CASES = [
    ("encode Data 1 KiB (server->client)", "builder", "codec._encode_with_builder(SERVER_DATA)"),
    ("", "encode()", "codec.encode(SERVER_DATA)"),
    (
        "",
        "encode_data()",
        "codec.encode_data(topic='room/42', epoch=3, offset=123456,"
        " timestamp_ms=1_700_000_000_000, payload=PAYLOAD)",
    ),
    ("encode Data 1 KiB (client->server)", "builder", "codec._encode_with_builder(CLIENT_DATA)"),
    ("", "encode()", "codec.encode(CLIENT_DATA)"),
    ("decode Data 1 KiB", "generic reader", "codec._decode_with_reader(SERVER_WIRE)"),
    ("", "decode()", "codec.decode(SERVER_WIRE)"),
    ("encode Ack", "builder", "codec._encode_with_builder(ACK)"),
    ("", "encode()", "codec.encode(ACK)"),
    ("", "encode_ack()", "codec.encode_ack(981)"),
    ("decode Ack", "generic reader", "codec._decode_with_reader(ACK_WIRE)"),
    ("", "decode()", "codec.decode(ACK_WIRE)"),
]


def ns_per_op(stmt: str) -> float:
    timer = timeit.Timer(stmt, globals=NAMESPACE)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e9


def main() -> None:
    for operation, path, stmt in CASES:
        print(f"{operation:36} {path:16} {ns_per_op(stmt):9.0f} ns/op")


if __name__ == "__main__":
    main()
