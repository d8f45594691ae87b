"""The sans-IO core alone, no sockets: client cores <-> hub, bytes handed over in memory.

    .venv/bin/python bench/core_bench.py [--runs 5] [--quick]

Measures, with 1 KiB payloads and the full protocol (WebSocket framing and masking, envelopes,
sequence numbers, acks, topic positions, history):

* echo: 100 client sessions each send a message, the app echoes it back to the sender's inbox,
  the client core decodes it. Reported as echoed messages/s (one message = client -> server ->
  client) and CPU µs per echoed message, all cores' work counted (server + client side).
* echo, server side: the same echo with the client cores left out: each session's masked
  ``Data`` frames are built beforehand (4 per read, as in a pipelined load), the hub receives
  them, the app callback answers each through ``send_to`` (the sender's inbox), the hub is
  flushed. CPU µs per echoed message on the server side only (what a server process spends
  in the core; the adapter's socket calls are not included).
* broadcast: one hub, 1,000 connected sessions; ``hub.broadcast`` then ``hub.flush``. Reported
  as deliveries/s on the server side only (what a server process spends), and end to end with
  every client core decoding its copy.

Medians over ``--runs`` runs. Single-threaded; the machine's other core idles.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sigma_core import codec
from sigma_core._framer import unmask
from sigma_core.client import (
    ClientConfig,
    ClientSession,
    ConnectionStatus,
    MessageReceived,
    OpenTransport,
)
from sigma_core.connection import ConnectionConfig
from sigma_core.entropy import SeededEntropy
from sigma_core.hub import ClientMessage, Hub, HubConfig

PAYLOAD = b"x" * 1024


class Bench:
    """A hub and N client cores wired back to back, pumped by hand (no simulator overhead)."""

    def __init__(self, n_clients: int, hub_config: HubConfig | None = None) -> None:
        self.now = 0.0
        # A wall clock as a server has one: messages carry a timestamp, as they do there.
        config = hub_config or HubConfig(connection=ConnectionConfig(wall_clock_offset=1.7e9))
        self.hub = Hub(config, entropy=SeededEntropy(1), now=self.now)
        self.clients: list[ClientSession] = []
        self.conn_of: dict[int, int] = {}  # client index -> conn id
        self.client_of: dict[int, int] = {}  # conn id -> client index
        self.attempt: dict[int, int] = {}
        self.received = 0
        for i in range(n_clients):
            client = ClientSession(ClientConfig(url="ws://bench/"), entropy=SeededEntropy(i + 2))
            self.clients.append(client)
            client.connect(self.now)
            self._client_events(i)
        self.settle()
        assert all(c.status is ConnectionStatus.CONNECTED for c in self.clients)

    def _client_events(self, i: int) -> None:
        client = self.clients[i]
        for event in client.events_received():
            if isinstance(event, MessageReceived):
                self.received += 1
            elif isinstance(event, OpenTransport):
                conn_id = self.hub.open_connection(self.now)
                self.conn_of[i] = conn_id
                self.client_of[conn_id] = i
                self.attempt[i] = event.attempt
                client.transport_opened(event.attempt, self.now)

    def pump_client(self, i: int) -> None:
        data = self.clients[i].data_to_send()
        if data:
            self.hub.receive_data(self.conn_of[i], b"".join(data), self.now)

    def pump_hub(self, on_event: Callable[[object], None] | None = None) -> None:
        while True:
            for conn_id, chunks, _close in self.hub.flush(self.now):
                i = self.client_of[conn_id]
                self.clients[i].receive_data(self.attempt[i], b"".join(chunks), self.now)
                self._client_events(i)
            events = self.hub.events_received()
            if not events:
                # Written, as the socket adapters' pump does after a read: the history the
                # clients' $inbox Acks let go of goes now (Hub.after_write).
                self.hub.after_write(self.now)
                return
            if on_event is not None:
                for event in events:
                    on_event(event)

    def settle(self) -> None:
        for _ in range(10):
            for i in range(len(self.clients)):
                self.pump_client(i)
            self.pump_hub()


def bench_echo(n_clients: int, rounds: int) -> tuple[float, float]:
    bench = Bench(n_clients)
    hub = bench.hub

    def echo(event: object) -> None:
        if isinstance(event, ClientMessage):
            hub.send_to(event.session.id, event.payload, bench.now)

    start_cpu, start = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        for i, client in enumerate(bench.clients):
            client.send(PAYLOAD, bench.now)
            bench.pump_client(i)
        bench.pump_hub(echo)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    total = n_clients * rounds
    assert bench.received == total, (bench.received, total)
    return total / elapsed, cpu / total * 1e6


def _masked_frame(envelope: bytes, mask: bytes = b"\x12\x34\x56\x78") -> bytes:
    """A client's frame (RFC 6455 §5.3: masked) carrying ``envelope``."""
    n = len(envelope)
    assert n < 65536
    head = bytes((0x82, 0x80 | n)) if n < 126 else bytes((0x82, 0xFE)) + n.to_bytes(2, "big")
    return head + mask + unmask(envelope, int.from_bytes(mask, "little"))


def bench_server_echo(n_clients: int, rounds: int, per_read: int = 4) -> float:
    """Server-side CPU µs per echoed message (hub + app callback mapping, no client cores)."""
    bench = Bench(n_clients)
    hub = bench.hub
    sessions = [bench.conn_of[i] for i in range(n_clients)]
    next_seq = dict.fromkeys(sessions, 1)  # no client has sent anything yet
    reads: list[list[tuple[int, bytes]]] = []
    for _ in range(rounds):
        batch = []
        for conn_id in sessions:
            seq = next_seq[conn_id]
            data = b"".join(_masked_frame(codec.encode_data(seq=seq + k, payload=PAYLOAD))
                            for k in range(per_read))
            next_seq[conn_id] = seq + per_read
            batch.append((conn_id, data))
        reads.append(batch)
    receive, flush, events_received = hub.receive_data, hub.flush, hub.events_received
    send_to, now = hub.send_to, bench.now
    sent = 0
    start_cpu = time.process_time()
    for batch in reads:
        for conn_id, data in batch:
            receive(conn_id, data, now)
            for event in events_received():
                if type(event) is ClientMessage:
                    send_to(event.session.id, event.payload, now)
            for _conn_id, chunks, _close in flush(now):
                sent += len(chunks)
    cpu = time.process_time() - start_cpu
    total = n_clients * rounds * per_read
    assert sent >= total, (sent, total)
    return cpu / total * 1e6


def bench_broadcast(n_clients: int, rounds: int) -> tuple[float, float]:
    bench = Bench(n_clients)
    hub = bench.hub
    server_time = 0.0
    start = time.perf_counter()
    for _ in range(rounds):
        t0 = time.perf_counter()
        hub.broadcast(PAYLOAD, bench.now)
        flushed = hub.flush(bench.now)
        server_time += time.perf_counter() - t0
        for conn_id, chunks, _close in flushed:
            i = bench.client_of[conn_id]
            bench.clients[i].receive_data(bench.attempt[i], b"".join(chunks), bench.now)
            bench._client_events(i)
    elapsed = time.perf_counter() - start
    deliveries = n_clients * rounds
    assert bench.received == deliveries
    return deliveries / server_time, deliveries / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    echo_rounds, bc_rounds = (5, 3) if args.quick else (50, 30)
    echo = [bench_echo(100, echo_rounds) for _ in range(args.runs)]
    server_echo = statistics.median(bench_server_echo(100, echo_rounds)
                                    for _ in range(args.runs))
    bcast = [bench_broadcast(1000, bc_rounds) for _ in range(args.runs)]
    rate = statistics.median(r for r, _ in echo)
    cpu = statistics.median(c for _, c in echo)
    server = statistics.median(s for s, _ in bcast)
    e2e = statistics.median(e for _, e in bcast)
    print(f"core only, 1 KiB payloads, medians of {args.runs} runs (Python "
          f"{sys.version.split()[0]})")
    print("| workload | figure |")
    print("|---|---|")
    print(f"| echo, 100 sessions (client core -> hub -> client core) | {rate:,.0f} msgs/s, "
          f"{cpu:.1f} µs CPU per echoed message |")
    print(f"| echo, 100 sessions, server side only (4 messages per read) | {server_echo:.1f} µs "
          "CPU per echoed message |")
    print(f"| broadcast to 1,000 sessions, server side (publish + flush) | {server:,.0f} "
          "deliveries/s |")
    print(f"| broadcast to 1,000 sessions, end to end (clients decode too) | {e2e:,.0f} "
          "deliveries/s |")


if __name__ == "__main__":
    main()
