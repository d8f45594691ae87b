"""The WebSocket layer alone: receiving and sending 1 KiB binary messages on an open connection.

    .venv/bin/python bench/framer_bench.py [--repeat 7] [--quick]

Each figure is µs of CPU per message through the public API (``receive_data`` then
``events_received``; ``send_message`` then ``data_to_send``), the best of ``--repeat`` timeit
runs. Receives are measured with one message per read and with 16 messages per read:

* server receive: masked client frames (RFC 6455 §5.3), so unmasking is part of the cost;
* client receive: unmasked server frames;
* server send: one unmasked frame; client send: one masked frame (wsproto draws the mask).

Single-threaded; CPU time (``time.process_time``). The figures still move with machine load
(caches, frequency): compare runs made side by side.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sigma_core.websocket import (
    HandshakeAccepted,
    HandshakeRequest,
    MessageReceived,
    Role,
    WebSocket,
    WebSocketConfig,
)

PAYLOAD = bytes(range(256)) * 4  # 1 KiB


def open_pair(config: WebSocketConfig) -> tuple[WebSocket, WebSocket]:
    client = WebSocket.client(host="bench", config=config)
    server = WebSocket(Role.SERVER, config)
    for chunk in client.data_to_send():
        server.receive_data(chunk)
    assert isinstance(server.events_received()[0], HandshakeRequest)
    server.accept()
    for chunk in server.data_to_send():
        client.receive_data(chunk)
    assert isinstance(client.events_received()[0], HandshakeAccepted)
    return client, server


def frames(sender: WebSocket, count: int) -> bytes:
    for _ in range(count):
        sender.send_message(PAYLOAD)
    return b"".join(sender.data_to_send())


def receive_case(receiver: WebSocket, data: bytes, per_read: int) -> Callable[[], None]:
    receive = receiver.receive_data
    events = receiver.events_received
    expected = [MessageReceived(data=PAYLOAD)] * per_read
    receive(data)
    assert events() == expected, "the receiver does not see the messages"

    def run() -> None:
        receive(data)
        events()

    return run


def send_case(sender: WebSocket) -> Callable[[], None]:
    send = sender.send_message
    drain = sender.data_to_send

    def run() -> None:
        send(PAYLOAD)
        drain()

    return run


def measure(run: Callable[[], None], per_call: int, number: int, repeat: int) -> float:
    """Best µs per message over ``repeat`` runs of ``number`` calls."""
    # CPU time of this process: a busy machine slows the wall clock more than the figures.
    best = min(timeit.repeat(run, number=number, repeat=repeat, timer=time.process_time))
    return best / number / per_call * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    args = parser.parse_args()
    number = 2_000 if args.quick else 20_000
    config = WebSocketConfig()
    client, server = open_pair(config)
    cases: list[tuple[str, Callable[[], None], int]] = []
    for per_read in (1, 16):
        masked = frames(client, per_read)
        cases.append(
            (f"server receive, masked, {per_read}/read", receive_case(server, masked, per_read),
             per_read)
        )
    for per_read in (1, 16):
        unmasked = frames(server, per_read)
        cases.append(
            (f"client receive, unmasked, {per_read}/read",
             receive_case(client, unmasked, per_read), per_read)
        )
    cases.append(("server send", send_case(server), 1))
    cases.append(("client send", send_case(client), 1))
    print(f"WebSocket layer, 1 KiB binary messages, best of {args.repeat} (Python "
          f"{sys.version.split()[0]})")
    print("| case | µs / message |")
    print("|---|---|")
    for name, run, per_call in cases:
        calls = max(1, number // per_call)
        print(f"| {name} | {measure(run, per_call, calls, args.repeat):.2f} |")


if __name__ == "__main__":
    main()
