"""The one load generator for every server under test (run by ``bench/run.py``, pinned to CPU 1).

    python bench/loadgen.py --url ws://127.0.0.1:PORT/ --proto sigma|plain|socketio \\
        --server-pid PID WORKLOAD [--quick] [--conns N] [--in-flight K] [--syscount FILE]
        [--latencies FILE]

Clients are picows (Cython) connections on uvloop. ``--proto plain`` speaks plain WebSocket (the
peers echo frames). ``--proto sigma`` speaks our protocol on top: the upgrade offers
``sigma.v1``, the client sends a ``Hello`` and waits for the ``Welcome``, then sends ``Data``
envelopes (``codec.encode_data``) numbered 1, 2, ... per connection, decodes every envelope the
server sends (Data with a small hand-written reader for topic and position, which the client
keeps; everything else with ``codec.decode``), ignores Acks, answers Pings with Pongs and
acknowledges its ``$inbox`` messages as the reference clients do (after 128, or 1 s after the
first unacknowledged one: :class:`InboxAcks`), so the server drops its copies of the replies.
``--proto socketio`` speaks Socket.IO 5 over Engine.IO 4 on the WebSocket transport
(``/socket.io/?EIO=4&transport=websocket``): each message is an ``echo`` event with one binary
attachment (a text frame ``451-[...]`` then the payload as a binary frame), counted when its
binary frame arrives; Engine.IO pings are answered.

Workloads (the issue's letters):

* ``a`` the original's: 3 clients x 500 sequential 1 KiB round trips; msgs/s and latency.
* ``b`` throughput: 100 connections x 16 messages in flight, 1 KiB; echoes/s. ``--conns`` and
  ``--in-flight`` set another pattern (``bench/run.py`` goes through 10/100/1,000 x 1/16/64).
* ``c`` broadcast: 1,000 clients; one of them asks for ``BCAST n`` rounds; deliveries/s.
* ``d`` memory: 10,000 idle connections (``--conns-d``); server VmRSS after minus before, per
  connection; then again after one 1 KiB echo on every connection.
* ``e`` restart (sigma only): 1,000 resuming clients; prints ``READY``, the harness kills the
  server and starts a new one on the same port; every client reconnects with full-jitter
  backoff (initial 1 s, x2, cap 30 s) and a resuming Hello; reports when each got its Welcome.

Server CPU is read from ``/proc/<server-pid>/stat`` (utime + stime) at the edges of the measured
window; the load generator's own CPU share over the window is reported beside it (near 100 %
means the load generator, not the server, set the pace). The split of the server's CPU into
user and kernel time comes from ``/proc/<pid>/stat`` (10 ms ticks). With ``--syscount FILE``
(the server runs with ``bench/syscount.so`` preloaded, see ``bench/syscount.c``) the socket
reads, writes and event-loop waits the server made in the window are read from that file and
reported per message. The result is one JSON object, the last line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from picows import (  # type: ignore[import-not-found, unused-ignore]
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

# The project when it is not installed; an installed one (or PYTHONPATH) comes first.
sys.path.append(str(Path(__file__).resolve().parent.parent))

from sigma_core import codec
from sigma_core.messages import (
    Ack,
    Data,
    Goodbye,
    Hello,
    Ping,
    Pong,
    StreamPosition,
    TopicPosition,
    Welcome,
)

PAYLOAD = bytes(range(256)) * 4  # 1 KiB
BINARY = WSMsgType.BINARY
CLOSE = WSMsgType.CLOSE
SUBPROTOCOL = (("Sec-WebSocket-Protocol", "sigma.v1"),)
_TICKS = os.sysconf("SC_CLK_TCK")

_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U16X2 = struct.Struct("<HH").unpack_from
_U64X2 = struct.Struct("<QQ").unpack_from
_DATA = 3  # Body union tag of Data


def peek_data(buf: memoryview) -> tuple[bytes, int, int] | None:
    """``(topic, epoch, offset)`` of a server->client Data envelope, read straight from the
    FlatBuffers tables (docs/protocol.md section 3) in about a quarter of ``codec.decode``'s
    time; None for any other envelope, or a Data laid out without topic or position, which the
    caller then hands to ``codec.decode``. Trusts the server under test: no bounds checks beyond
    Python's own."""
    root = _U32(buf, 0)[0]
    vtable = root - _I32(buf, root)[0]
    type_at, body_at = _U16X2(buf, vtable + 4)
    if not type_at or buf[root + type_at] != _DATA:
        return None
    at = root + body_at
    table = at + _U32(buf, at)[0]
    vtable = table - _I32(buf, table)[0]
    if _U16(buf, vtable)[0] < 8:
        return None
    topic_at, position_at = _U16X2(buf, vtable + 4)
    if not (topic_at and position_at):
        return None
    at = table + topic_at
    string = at + _U32(buf, at)[0]
    topic = bytes(buf[string + 4:string + 4 + _U32(buf, string)[0]])
    epoch, offset = _U64X2(buf, table + position_at)
    return topic, epoch, offset


# ----------------------------------------------------------------------------- /proc readers


def proc_cpu(pid: int) -> float:
    """CPU seconds a process has used so far: the sum over its threads of the time on a CPU
    (``/proc/<pid>/task/*/schedstat``, nanoseconds), falling back to utime + stime from
    ``/proc/<pid>/stat`` (clock ticks)."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def proc_user_sys(pid: int) -> tuple[float, float]:
    """User and kernel CPU seconds of a process (``/proc/<pid>/stat`` utime, stime; ticks)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


#: The counters bench/syscount.c keeps (u64 each, in this order).
SYSCOUNT_FIELDS = ("reads", "reads_with_data", "bytes_read", "writes", "bytes_written", "waits")


def read_syscount(path: str | None) -> tuple[int, ...] | None:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(8 * len(SYSCOUNT_FIELDS))
    except OSError:
        return None
    if len(raw) < 8 * len(SYSCOUNT_FIELDS):
        return None
    return struct.unpack(f"<{len(SYSCOUNT_FIELDS)}Q", raw)


def cpu_busy() -> list[float]:
    """Seconds each CPU has spent in user, nice and system time (``/proc/stat``)."""
    busy = []
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"cpu") and line[3:4] != b" ":
                fields = line.split()
                busy.append((int(fields[1]) + int(fields[2]) + int(fields[3])) / _TICKS)
    return busy


def proc_rss_kib(pid: int) -> int:
    """Resident set size (VmRSS) of a process, KiB."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Window:
    """Wall clock, server CPU, our own CPU and every core's busy time at the start of a measured
    window. ``close()`` also reports the *foreign* share of each pinned core: busy time there
    that was neither the server (CPU 0) nor this process (CPU 1), i.e. other work on the machine
    that competed with the benchmark (10 ms resolution)."""

    syscount: str | None = None  # set from --syscount in main()

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.busy = cpu_busy()
        self.sys0 = read_syscount(self.syscount)
        self.user_sys = proc_user_sys(server_pid)
        self.wall = time.perf_counter()
        self.server_cpu = proc_cpu(server_pid)
        self.own_cpu = time.process_time()

    def close(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        server_cpu = proc_cpu(self.pid) - self.server_cpu
        own_cpu = time.process_time() - self.own_cpu
        user, kernel = (b - a for a, b in zip(self.user_sys, proc_user_sys(self.pid),
                                              strict=True))
        sys1 = read_syscount(self.syscount)
        busy = [b - a for a, b in zip(self.busy, cpu_busy(), strict=True)]
        counts: dict[str, float] = {}
        if self.sys0 is not None and sys1 is not None:
            counts = {f"sys_{k}": b - a
                      for k, a, b in zip(SYSCOUNT_FIELDS, self.sys0, sys1, strict=True)}
        return {
            **counts,
            "server_kernel_share": kernel / (user + kernel) if user + kernel else 0.0,
            "wall_s": wall,
            "server_cpu_s": server_cpu,
            "server_cpu_share": server_cpu / wall,
            "loadgen_cpu_share": own_cpu / wall,
            "foreign_cpu0_share": max(0.0, busy[0] - server_cpu) / wall,
            "foreign_cpu1_share": max(0.0, busy[1] - own_cpu) / wall if len(busy) > 1 else 0.0,
        }


# ----------------------------------------------------------------------------- clients


def _ignore(conn: Any) -> None:
    pass


class PlainConn(WSListener):  # type: ignore[misc, unused-ignore]
    """A plain WebSocket client: each binary message calls ``on_message(self)``."""

    proto = "plain"

    def __init__(self, state: SessionState | None = None) -> None:
        self.transport: WSTransport | None = None
        self.on_message: Callable[[Any], None] = _ignore
        self.t0 = 0.0
        self.left = 0
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.ready.set_result(True)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is BINARY:
            self.on_message(self)
        elif frame.msg_type is CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_result(False)

    def send(self, payload: bytes) -> None:
        self.transport.send(BINARY, payload)  # type: ignore[union-attr]


INBOX_TOPIC = b"$inbox"


def _encode_inbox_ack(position: StreamPosition) -> bytes:
    return codec.encode(Ack(positions=(TopicPosition(topic="$inbox", position=position),)))


def _inbox_ack_encoder() -> Callable[[StreamPosition], bytes]:
    """``_encode_inbox_ack``, fast: the generic encoder takes ~38 µs per Ack here, enough to
    stall this load generator at every acknowledgement and hand the server smaller pieces of
    each window. The Ack's bytes differ only in the position's two 8-byte fields, so one
    encoded Ack is a template patched in place; checked against the encoder at start (the
    encoder itself is used where the check fails, and for a zero epoch or offset, which the
    encoder might lay out differently)."""
    probe = StreamPosition(0x0102030405060708, 0x1112131415161718)
    template = _encode_inbox_ack(probe)
    epoch_at = template.find(struct.pack("<Q", probe.epoch))
    offset_at = template.find(struct.pack("<Q", probe.offset))
    if epoch_at < 0 or offset_at < 0:
        return _encode_inbox_ack
    pack_into = struct.pack_into

    def encode(position: StreamPosition) -> bytes:
        if not position.epoch or not position.offset:
            return _encode_inbox_ack(position)
        out = bytearray(template)
        pack_into("<Q", out, epoch_at, position.epoch)
        pack_into("<Q", out, offset_at, position.offset)
        return bytes(out)

    checks = (StreamPosition(0x7EDCBA9876543210, 1), StreamPosition(1, 0x0FEDCBA987654321))
    if any(encode(check) != _encode_inbox_ack(check) for check in checks):
        return _encode_inbox_ack
    return encode


#: The Ack for one ``$inbox`` position (:func:`_inbox_ack_encoder`).
encode_inbox_ack = _inbox_ack_encoder()


class InboxAcks:
    """A client's ``$inbox`` acknowledgements, as the reference clients send them
    (docs/protocol.md §7): an ``Ack`` with the inbox position after ``every`` inbox messages,
    or ``delay`` seconds after the first unacknowledged one."""

    __slots__ = ("delay", "every", "position", "send", "timer", "unacked")

    #: ``every`` when not given (``--inbox-ack-every``); 0: never acknowledge.
    default_every = 128

    def __init__(self, send: Callable[[bytes], None], every: int | None = None,
                 delay: float = 1.0) -> None:
        self.send = send
        self.every = InboxAcks.default_every if every is None else every
        self.delay = delay
        self.unacked = 0
        self.timer: asyncio.TimerHandle | None = None
        self.position: StreamPosition | None = None

    def received(self, position: StreamPosition) -> None:
        if not self.every:
            return
        self.position = position
        self.unacked += 1
        if self.unacked >= self.every:
            self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.unacked and self.position is not None:
            self.unacked = 0
            self.send(encode_inbox_ack(self.position))

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class SessionState:
    """What a SigmaSockets client keeps across connections (for resume)."""

    def __init__(self) -> None:
        self.session_id = ""
        self.resume_token = b""
        #: Last position per topic (topic as UTF-8 bytes, as the Data envelopes carry it).
        self.positions: dict[bytes, StreamPosition] = {}
        self.last_acked = 0
        self.failures = 0
        self.welcomes: list[float] = []
        self.fresh = 0
        self.on_lost: Callable[[SessionState], None] | None = None

    def hello(self) -> bytes:
        return codec.encode(Hello(
            session_id=self.session_id, resume_token=self.resume_token,
            positions=tuple(TopicPosition(topic=t.decode(), position=p)
                            for t, p in self.positions.items()),
            last_acked_seq=self.last_acked))


class SigmaConn(PlainConn):
    """A SigmaSockets client connection: Hello/Welcome, numbered Data, positions, Pong."""

    proto = "sigma"

    def __init__(self, state: SessionState | None = None) -> None:
        super().__init__()
        self.state = state if state is not None else SessionState()
        self.seq = 0
        self.inbox = InboxAcks(self._send_envelope)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        transport.send(BINARY, self.state.hello())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not BINARY:
            if frame.msg_type is CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        buf = frame.get_payload_as_memoryview()
        data = peek_data(buf)
        if data is not None:
            topic, epoch, offset = data
            position = self.state.positions[topic] = StreamPosition(epoch, offset)
            if topic == INBOX_TOPIC:
                self.inbox.received(position)
            self.on_message(self)
            return
        msg = codec.decode(buf)
        kind = type(msg)
        if kind is Data:
            position = msg.position  # type: ignore[union-attr]
            if position is not None:
                self.state.positions[msg.topic.encode()] = position  # type: ignore[union-attr]
            self.on_message(self)
        elif kind is Ping:
            transport.send(BINARY, codec.encode(Pong(
                id=msg.id, echo_timestamp_ms=msg.timestamp_ms,  # type: ignore[union-attr]
                timestamp_ms=int(time.time() * 1000))))
        elif kind is Welcome:
            self._welcome(msg)  # type: ignore[arg-type]
        elif kind is Goodbye:
            pass
        # Ack and anything else: nothing to do (no client-side retransmit buffer here).

    def _welcome(self, welcome: Welcome) -> None:
        state = self.state
        state.welcomes.append(time.monotonic())
        if state.session_id and not welcome.resumed:
            state.fresh += 1
        state.session_id = welcome.session_id
        state.resume_token = welcome.resume_token
        for rec in welcome.recovery:
            if rec.position is not None:
                state.positions[rec.topic.encode()] = rec.position
        self.seq = welcome.last_received_seq if welcome.resumed else 0
        state.failures = 0
        if not self.ready.done():
            self.ready.set_result(True)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.inbox.cancel()
        if not self.ready.done():
            self.ready.set_result(False)
        elif self.state.on_lost is not None:
            self.state.on_lost(self.state)

    def _send_envelope(self, envelope: bytes) -> None:
        if self.transport is not None:
            self.transport.send(BINARY, envelope)

    def send(self, payload: bytes) -> None:
        self.seq = seq = self.seq + 1
        self.transport.send(BINARY, codec.encode_data(seq=seq, payload=payload))  # type: ignore[union-attr]


TEXT = WSMsgType.TEXT
#: Socket.IO 5 binary event "echo" with one attachment, in an Engine.IO 4 message packet.
SIO_ECHO = b'451-["echo",{"_placeholder":true,"num":0}]'


class SocketIOConn(PlainConn):
    """A Socket.IO client (Engine.IO 4, WebSocket transport, default namespace): connects the
    namespace after the Engine.IO open packet, answers pings, sends each message as an ``echo``
    binary event and counts a message when an event's binary attachment arrives."""

    proto = "socketio"

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport  # ready once the namespace is connected ("40{...}")

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is BINARY:
            self.on_message(self)
        elif kind is TEXT:
            packet = frame.get_payload_as_bytes()
            if packet[:1] == b"0":  # Engine.IO open
                transport.send(TEXT, b"40")
            elif packet[:2] == b"40":  # namespace connected
                if not self.ready.done():
                    self.ready.set_result(True)
            elif packet == b"2":  # Engine.IO ping
                transport.send(TEXT, b"3")
            elif packet[:2] in (b"41", b"44") and not self.ready.done():
                self.ready.set_result(False)
        elif kind is CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def send(self, payload: bytes) -> None:
        transport = self.transport
        transport.send(TEXT, SIO_ECHO)  # type: ignore[union-attr]
        transport.send(BINARY, payload)  # type: ignore[union-attr]


PROTOCOLS: dict[str, type[PlainConn]] = {"plain": PlainConn, "sigma": SigmaConn,
                                         "socketio": SocketIOConn}


async def open_one(url: str, cls: type[PlainConn], state: SessionState | None = None,
                   tries: int = 5) -> PlainConn:
    """Connect and, for ours, wait for the Welcome."""
    headers = SUBPROTOCOL if cls is SigmaConn else None
    if cls is SocketIOConn:
        url = url.rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
    for attempt in range(tries):
        try:
            _transport, listener = await ws_connect(lambda: cls(state), url,
                                                    extra_headers=headers,
                                                    websocket_handshake_timeout=30)
        except (TimeoutError, OSError):
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
            continue
        assert isinstance(listener, PlainConn)
        if await listener.ready:
            return listener
    raise ConnectionError(f"could not open a connection to {url}")


async def open_many(url: str, cls: type[PlainConn], n: int, concurrency: int = 64
                    ) -> list[PlainConn]:
    sem = asyncio.Semaphore(concurrency)

    async def one() -> PlainConn:
        async with sem:
            return await open_one(url, cls)

    return list(await asyncio.gather(*(one() for _ in range(n))))


def close_all(conns: list[PlainConn]) -> None:
    for conn in conns:
        if conn.transport is not None:
            conn.transport.disconnect(graceful=False)


def us(seconds: float) -> float:
    return seconds * 1e6


def per_message(measured: dict[str, Any], messages: int) -> dict[str, float]:
    """Socket syscalls per message from the window's counters (empty without --syscount).
    ``msgs_per_read``: messages the server took in per socket read call (EAGAIN included)."""
    if "sys_reads" not in measured or not messages:
        return {}
    reads = measured["sys_reads"]
    return {
        "msgs_per_read": messages / reads if reads else 0.0,
        "reads_per_msg": reads / messages,
        "empty_reads_per_msg": (reads - measured["sys_reads_with_data"]) / messages,
        "writes_per_msg": measured["sys_writes"] / messages,
        "waits_per_msg": measured["sys_waits"] / messages,
    }


# ----------------------------------------------------------------------------- workloads


async def workload_a(args: argparse.Namespace, cls: type[PlainConn]) -> dict[str, Any]:
    """The original's: 3 clients x 500 sequential round trips (after 50 unmeasured each)."""
    n_clients, n_msgs, warm = 3, 500, 50
    conns = await open_many(args.url, cls, n_clients)
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    ends: list[float] = []  # perf_counter() at each reply (--latencies)
    done: asyncio.Future[None] = loop.create_future()
    finished = 0
    perf = time.perf_counter

    def on_message(conn: PlainConn) -> None:
        nonlocal finished
        now = perf()
        latencies.append(now - conn.t0)
        ends.append(now)
        conn.left -= 1
        if conn.left:
            conn.t0 = perf()
            conn.send(PAYLOAD)
        else:
            finished += 1
            if finished == n_clients:
                done.set_result(None)

    async def round_trips(count: int) -> None:
        nonlocal done, finished
        done, finished = loop.create_future(), 0
        latencies.clear()
        ends.clear()
        for conn in conns:
            conn.on_message = on_message
            conn.left = count
            conn.t0 = perf()
            conn.send(PAYLOAD)
        await asyncio.wait_for(done, 60)

    await round_trips(warm)
    window = Window(args.server_pid)
    await round_trips(n_msgs)
    measured = window.close()
    close_all(conns)
    if args.latencies:  # every round trip: (sent, answered), perf_counter() = CLOCK_MONOTONIC
        Path(args.latencies).write_text(json.dumps(
            [(end - latency, end) for latency, end in zip(latencies, ends, strict=True)]))
    lat = sorted(latencies)
    total = n_clients * n_msgs
    assert len(lat) == total, (len(lat), total)
    return {
        **measured,
        "messages": total,
        "msgs_per_s": total / measured["wall_s"],
        "server_cpu_us_per_msg": us(measured["server_cpu_s"]) / total,
        **per_message(measured, total),
        "p50_us": us(lat[len(lat) // 2]),
        "p99_us": us(lat[min(len(lat) - 1, round(len(lat) * 0.99))]),
        "max_us": us(lat[-1]),
    }


async def workload_b(args: argparse.Namespace, cls: type[PlainConn]) -> dict[str, Any]:
    """Throughput: ``--conns`` connections x ``--in-flight`` messages in flight (default
    100 x 16); echoes counted over a timed window."""
    n_conns, in_flight = args.conns, args.in_flight
    warmup, duration = (0.3, 1.0) if args.quick else (0.5, 2.0)
    conns = await open_many(args.url, cls, n_conns)
    received = 0
    running = True

    def on_message(conn: PlainConn) -> None:
        nonlocal received
        received += 1
        if running:
            conn.send(PAYLOAD)

    for conn in conns:
        conn.on_message = on_message
        for _ in range(in_flight):
            conn.send(PAYLOAD)
    await asyncio.sleep(warmup)
    start, window = received, Window(args.server_pid)
    await asyncio.sleep(duration)
    count, measured = received - start, window.close()
    running = False
    close_all(conns)
    if not count:
        raise RuntimeError(f"no echo came back in the {duration} s window "
                           f"({n_conns} connections x {in_flight} in flight)")
    return {
        **measured,
        "connections": n_conns,
        "in_flight": in_flight,
        "messages": count,
        "msgs_per_s": count / measured["wall_s"],
        "server_cpu_us_per_msg": us(measured["server_cpu_s"]) / count,
        **per_message(measured, count),
    }


async def workload_c(args: argparse.Namespace, cls: type[PlainConn]) -> dict[str, Any]:
    """Broadcast: one client asks for ``BCAST per_round``; every client counts deliveries."""
    n_clients, per_round = 1000, 10
    min_rounds, max_rounds, budget = (2, 4, 0.5) if args.quick else (3, 20, 1.5)
    conns = await open_many(args.url, cls, n_clients)
    loop = asyncio.get_running_loop()
    received = 0
    target = 0
    done: asyncio.Future[None] = loop.create_future()

    def on_message(conn: PlainConn) -> None:
        nonlocal received
        received += 1
        if received == target:
            done.set_result(None)

    for conn in conns:
        conn.on_message = on_message
    controller = conns[0]
    request = b"BCAST %d" % per_round
    await asyncio.sleep(0.2)  # let the server settle after the connection burst
    window = Window(args.server_pid)
    busy = 0.0
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or busy < budget):
        target = received + n_clients * per_round
        done = loop.create_future()
        t0 = time.perf_counter()
        controller.send(request)
        await asyncio.wait_for(done, 120)
        busy += time.perf_counter() - t0
        rounds += 1
    measured = window.close()
    close_all(conns)
    deliveries = rounds * per_round * n_clients
    return {
        **measured,
        "rounds": rounds,
        "deliveries": deliveries,
        "busy_s": busy,
        "deliveries_per_s": deliveries / busy,
        "server_cpu_us_per_delivery": us(measured["server_cpu_s"]) / deliveries,
        "writes_per_delivery": (measured["sys_writes"] / deliveries
                                if "sys_writes" in measured else None),
    }


async def workload_d(args: argparse.Namespace, cls: type[PlainConn]) -> dict[str, Any]:
    """Memory: server VmRSS before and after opening N idle connections (ours: sessions, Hello
    and Welcome done), then again after every connection has had one 1 KiB echo (and, ours,
    has acknowledged the reply: docs/protocol.md §7)."""
    n = 1000 if args.quick else args.conns_d
    await asyncio.sleep(0.3)
    before = proc_rss_kib(args.server_pid)
    t0 = time.perf_counter()
    conns = await open_many(args.url, cls, n)
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    after = proc_rss_kib(args.server_pid)
    assert len(conns) == n
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    echoed = 0

    def on_message(conn: PlainConn) -> None:
        nonlocal echoed
        echoed += 1
        if echoed == n:
            done.set_result(None)

    for i in range(0, n, 500):  # in slices, so the load generator's buffers stay small
        for conn in conns[i:i + 500]:
            conn.on_message = on_message
            conn.send(PAYLOAD)
        await asyncio.sleep(0)
    await asyncio.wait_for(done, 120)
    # Past the clients' inbox Acks (InboxAcks: 1 s after a reply), as a user's clients send them.
    await asyncio.sleep(1.5)
    after_echo = proc_rss_kib(args.server_pid)
    return {
        "connections": n,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_after_echo_kib": after_echo,
        "kib_per_conn": (after - before) / n,
        "kib_per_conn_after_echo": (after_echo - before) / n,
        "connect_s": connect_s,
    }


async def workload_e(args: argparse.Namespace, cls: type[PlainConn]) -> dict[str, Any]:
    """Restart: N resuming clients; after ``READY`` the harness restarts the server."""
    if cls is not SigmaConn:
        raise SystemExit("workload e needs --proto sigma (the peers have no resume)")
    n = 200 if args.quick else 1000
    initial, multiplier, cap = 1.0, 2.0, 30.0
    loop = asyncio.get_running_loop()
    states = [SessionState() for _ in range(n)]
    sem = asyncio.Semaphore(64)

    async def first(state: SessionState) -> None:
        async with sem:
            await open_one(args.url, SigmaConn, state)

    await asyncio.gather(*(first(s) for s in states))
    for state in states:
        state.welcomes.clear()
    lost_at: list[float] = []
    attempts: list[int] = []
    all_back: asyncio.Future[None] = loop.create_future()
    back = 0

    async def reconnect(state: SessionState) -> None:
        nonlocal back
        tries = 0
        while True:
            state.failures += 1
            delay = random.random() * min(cap, initial * multiplier ** (state.failures - 1))
            await asyncio.sleep(delay)
            tries += 1
            try:
                _t, listener = await ws_connect(lambda: SigmaConn(state), args.url,
                                                extra_headers=SUBPROTOCOL,
                                                websocket_handshake_timeout=10)
            except (TimeoutError, OSError):
                continue
            if await listener.ready:  # type: ignore[attr-defined, unused-ignore]
                break
        attempts.append(tries)
        back += 1
        if back == n:
            all_back.set_result(None)

    tasks: set[asyncio.Task[None]] = set()

    def on_lost(state: SessionState) -> None:
        lost_at.append(time.monotonic())
        task = loop.create_task(reconnect(state))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for state in states:
        state.on_lost = on_lost
    print("READY", flush=True)
    await asyncio.wait_for(all_back, 120)
    welcomes = sorted(s.welcomes[-1] for s in states)
    return {
        "clients": n,
        "first_lost_monotonic": min(lost_at),
        "last_welcome_monotonic": welcomes[-1],
        "median_welcome_monotonic": statistics.median(welcomes),
        "fresh_sessions": sum(s.fresh for s in states),
        "attempts_max": max(attempts),
        "attempts_mean": statistics.fmean(attempts),
        "backoff": {"initial_s": initial, "multiplier": multiplier, "max_s": cap,
                    "jitter": "full"},
    }


WORKLOADS = {"a": workload_a, "b": workload_b, "c": workload_c, "d": workload_d,
             "e": workload_e}


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    cls = PROTOCOLS[args.proto]
    gc.freeze()
    return await WORKLOADS[args.workload](args, cls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--proto", choices=sorted(PROTOCOLS), required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--conns", type=int, default=100, help="(b): connections (100)")
    parser.add_argument("--in-flight", type=int, default=16,
                        help="(b): messages in flight per connection (16)")
    parser.add_argument("--conns-d", type=int, default=10000,
                        help="(d): connections (10,000; 1,000 with --quick)")
    parser.add_argument("--inbox-ack-every", type=int, default=128, metavar="N",
                        help="sigma: acknowledge $inbox messages after N of them or 1 s after "
                             "the first unacknowledged one, as the reference clients do "
                             "(128; 0: never, an old client)")
    parser.add_argument("--latencies", metavar="FILE",
                        help="(a): write every measured round trip to FILE as JSON, "
                             "[[sent, answered], ...] in CLOCK_MONOTONIC seconds "
                             "(bench/latency_pairs.py --trace)")
    parser.add_argument("--syscount", metavar="FILE",
                        help="the server's syscall counters (bench/syscount.c), read at the "
                             "edges of the window")
    args = parser.parse_args()
    Window.syscount = args.syscount
    InboxAcks.default_every = args.inbox_ack_every
    raise_nofile()
    result = uvloop.run(amain(args))
    print(json.dumps(result), flush=True)
    os._exit(0)  # skip tearing down thousands of connections one by one


if __name__ == "__main__":
    main()
