"""Load-generator process for ``bench/load.py``: picows clients on uvloop speaking our protocol.

    python bench/load_worker.py hold   --url URL --conns N [--concurrency C]
    python bench/load_worker.py churn  --url URL --loops L --seconds S [--seed N]
    python bench/load_worker.py stream --url URL --fast N --slow M [--slow-read BYTES]

Every client offers ``sigma.v1``, sends a ``Hello`` (a resuming one when it has a session) and
waits for the ``Welcome``; it answers ``Ping`` with ``Pong`` (unless it plays dead), keeps the
last position per topic, and reads the harness's stamped broadcasts
(``bench/servers/sigma_load.py``: magic, sequence, CLOCK_MONOTONIC ns) for their latency.

Roles:

* ``hold`` -- open N connections and keep them; answer ``stats`` lines on stdin with a JSON
  line (open, closed and their codes, pings answered, stamped broadcasts received);
* ``churn`` -- L loops, each doing connect, Hello/Welcome, one or two messages (waits for their
  echoes), then one of: Goodbye + close (session ends), close without Goodbye (session left to
  expire), RST (SO_LINGER 0), vanish (stops answering and reading; the server's heartbeat has
  to find it), and sometimes resuming an earlier session first; as fast as it goes for S s;
* ``stream`` -- N fast readers and M slow ones while the server streams stamped broadcasts
  (``stats`` and ``quit`` on stdin). A slow one has a 64 KiB receive buffer and reads nothing
  (half of them) or 32 KiB/s (the other half) for a stall of 8 s (half) or 16 s (the other
  half), then reads at full speed: it drains what the kernel kept, sees the end of the
  connection if the server cut it meanwhile, reconnects and resumes from its last position.

Results are JSON lines on stdout (``{"event": ...}``); the last one is the result.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import random
import socket
import struct
import sys
import time
from array import array
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/, for loadgen
sys.path.append(str(Path(__file__).resolve().parent.parent))  # the project when not installed

from loadgen import SUBPROTOCOL, InboxAcks, peek_data, raise_nofile

from sigma_core import codec
from sigma_core.errors import ErrorCode
from sigma_core.messages import (
    Goodbye,
    Hello,
    Ping,
    Pong,
    RecoveryStatus,
    StreamPosition,
    TopicPosition,
    Welcome,
)

BINARY = WSMsgType.BINARY
CLOSE = WSMsgType.CLOSE
#: What sigma_load.py puts at the head of a stamped broadcast.
MAGIC = b"SIGSTAMP"
STAMP = struct.Struct("<QQ")
ALL = b"$all"
INBOX = b"$inbox"
TCP_ESTABLISHED = 1  # tcp_info.tcpi_state (linux/tcp.h)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Session:
    """What a client keeps across connections."""

    __slots__ = ("ended_at", "positions", "resume_token", "session_id")

    def __init__(self) -> None:
        self.session_id = ""
        self.resume_token = b""
        self.positions: dict[bytes, StreamPosition] = {}
        self.ended_at = 0.0

    def hello(self) -> bytes:
        return codec.encode(Hello(
            session_id=self.session_id, resume_token=self.resume_token,
            positions=tuple(TopicPosition(topic=t.decode(), position=p)
                            for t, p in self.positions.items())))


class Conn(WSListener):  # type: ignore[misc, unused-ignore]
    """One client connection. Subclass hooks: ``on_stamp`` and ``on_inbox``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.transport: WSTransport | None = None
        loop = asyncio.get_running_loop()
        self.welcomed: asyncio.Future[Welcome | None] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.close_code = 0
        self.seq = 0
        self.pings = 0
        self.silent = False  # plays dead: no Pong, nothing read
        self.inbox = InboxAcks(self._send_envelope)

    # picows callbacks

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        transport.send(BINARY, self.session.hello())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is CLOSE:
            self.close_code = frame.get_close_code()
            transport.send_close(self.close_code)
            transport.disconnect()
            return
        if kind is not BINARY or self.silent:
            return
        buf = frame.get_payload_as_memoryview()
        data = peek_data(buf)
        if data is not None:
            topic, epoch, offset = data
            position = self.session.positions[topic] = StreamPosition(epoch, offset)
            if topic == INBOX:
                self.inbox.received(position)
            if topic == ALL:
                raw = bytes(buf)
                at = raw.find(MAGIC)
                if at >= 0:
                    seq, sent_ns = STAMP.unpack_from(raw, at + len(MAGIC))
                    self.on_stamp(offset, seq, sent_ns)
            elif topic == INBOX:
                self.on_inbox()
            return
        msg = codec.decode(buf)
        if isinstance(msg, Ping):
            self.pings += 1
            transport.send(BINARY, codec.encode(Pong(
                id=msg.id, echo_timestamp_ms=msg.timestamp_ms,
                timestamp_ms=int(time.time() * 1000))))
        elif isinstance(msg, Welcome):
            session = self.session
            session.session_id = msg.session_id
            session.resume_token = msg.resume_token
            for rec in msg.recovery:
                if rec.position is not None:
                    session.positions[rec.topic.encode()] = rec.position
            self.seq = msg.last_received_seq if msg.resumed else 0
            self.on_welcome(msg)
            if not self.welcomed.done():
                self.welcomed.set_result(msg)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.inbox.cancel()
        if not self.welcomed.done():
            self.welcomed.set_result(None)
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def _send_envelope(self, envelope: bytes) -> None:
        if self.transport is not None and not self.silent:
            self.transport.send(BINARY, envelope)

    # hooks

    def on_welcome(self, welcome: Welcome) -> None:
        pass

    def on_stamp(self, offset: int, seq: int, sent_ns: int) -> None:
        pass

    def on_inbox(self) -> None:
        pass

    # commands

    def send(self, payload: bytes) -> None:
        self.seq += 1
        self.transport.send(BINARY, codec.encode_data(seq=self.seq, payload=payload))  # type: ignore[union-attr]

    def goodbye_and_close(self) -> None:
        """Leave for good, as ``SigmaSocketClient.disconnect()`` does: Goodbye(NORMAL), 1000."""
        transport = self.transport
        assert transport is not None
        transport.send(BINARY, codec.encode(Goodbye(code=ErrorCode.NORMAL, reason="bye")))
        transport.send_close(1000)

    def reset(self) -> None:
        """Drop the socket with an RST (SO_LINGER 0), no close frame."""
        transport = self.transport
        assert transport is not None
        sock = transport.underlying_transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.disconnect(graceful=False)


async def open_conn(url: str, factory: Any, tries: int = 5, rcvbuf: int = 0) -> Conn | None:
    """Connect and wait for the Welcome; None when every try failed.

    On uvloop's own transport, not aiofastnet's (picows' default when installed): aiofastnet
    1.2.0 on uvloop never reports the end of a connection reset while its reading was paused,
    not even after ``resume_reading()`` -- and the slow and vanishing clients here pause, and
    the server cuts them with a reset."""
    def small_socket(_url: Any) -> socket.socket | None:
        if not rcvbuf:
            return None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        return sock

    for attempt in range(tries):
        try:
            _transport, conn = await ws_connect(
                factory, url, extra_headers=SUBPROTOCOL, websocket_handshake_timeout=30,
                socket_factory=small_socket if rcvbuf else None, use_aiofastnet=False)
        except (TimeoutError, OSError):
            conn = None
        # picows returns no listener when the server closed the socket before its 101 (an
        # overloaded server's handshake_timeout, say): a failed attempt like the others.
        if isinstance(conn, Conn) and await conn.welcomed is not None:
            return conn
        await asyncio.sleep(0.05 * (attempt + 1))
    return None


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


# ----------------------------------------------------------------------------- hold


class HoldConn(Conn):
    stamps = 0
    last_stamp_ns = 0

    def on_stamp(self, offset: int, seq: int, sent_ns: int) -> None:
        self.stamps += 1
        HoldConn.last_stamp_ns = time.monotonic_ns()


async def role_hold(args: argparse.Namespace) -> None:
    sem = asyncio.Semaphore(args.concurrency)
    failed = 0

    async def one() -> Conn | None:
        nonlocal failed
        async with sem:
            conn = await open_conn(args.url, lambda: HoldConn(Session()))
        if conn is None:
            failed += 1
        return conn

    t0 = time.monotonic()
    conns = [c for c in await asyncio.gather(*(one() for _ in range(args.conns))) if c]
    emit(event="connected", open=len(conns), failed=failed, seconds=time.monotonic() - t0,
         done_monotonic_ns=time.monotonic_ns())
    gc.freeze()
    reader = await stdin_lines()
    while line := await reader.readline():
        if line.strip() != b"stats":
            break
        codes = collections.Counter(c.close_code for c in conns if c.closed.done())
        pings = [c.pings for c in conns]
        emit(event="stats", open=sum(1 for c in conns if not c.closed.done()),
             closed=sum(codes.values()), close_codes={str(k): v for k, v in codes.items()},
             pings_total=sum(pings), pings_min=min(pings, default=0),
             pings_max=max(pings, default=0),
             stamps_total=sum(c.stamps for c in conns),  # type: ignore[attr-defined]
             stamps_min=min((c.stamps for c in conns), default=0),  # type: ignore[attr-defined]
             last_stamp_ns=HoldConn.last_stamp_ns)


# ----------------------------------------------------------------------------- churn


class ChurnConn(Conn):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.echoes = 0
        self.want = 0
        self.echoed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_inbox(self) -> None:
        self.echoes += 1
        if self.echoes >= self.want and not self.echoed.done():
            self.echoed.set_result(None)


#: How a churn cycle ends, with its weight: (kind, weight).
ENDINGS = (("goodbye", 3), ("close", 3), ("rst", 3), ("vanish", 1))


async def role_churn(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    kinds = [k for k, w in ENDINGS for _ in range(w)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.seconds
    resumable: collections.deque[Session] = collections.deque(maxlen=1000)
    counts: collections.Counter[str] = collections.Counter()
    vanished: set[Conn] = set()
    vanish_codes: collections.Counter[int] = collections.Counter()
    started = time.monotonic()

    def vanish_done(conn: Conn) -> None:
        vanished.discard(conn)
        vanish_codes[conn.close_code] += 1

    async def cycle() -> None:
        session = Session()
        resuming = bool(resumable) and rng.random() < args.resume_share
        if resuming:
            session = resumable.popleft()
        conn = await open_conn(args.url, lambda: ChurnConn(session), tries=1)
        if conn is None:
            counts["connect_failed"] += 1
            return
        assert isinstance(conn, ChurnConn)
        welcome = conn.welcomed.result()
        assert welcome is not None
        if resuming:
            counts["resumed" if welcome.resumed else "resume_refused"] += 1
        conn.want = rng.choice((1, 2))
        for _ in range(conn.want):
            conn.send(b"x" * 64)
        try:
            await asyncio.wait_for(asyncio.shield(conn.echoed), 10)
        except TimeoutError:
            counts["echo_timeout"] += 1
        kind = rng.choice(kinds)
        counts[kind] += 1
        if kind == "goodbye":
            conn.goodbye_and_close()
        elif kind == "close":
            conn.transport.send_close(1000)  # type: ignore[union-attr]
            resumable.append(session)
        elif kind == "rst":
            conn.reset()
            resumable.append(session)
        else:
            conn.silent = True
            conn.transport.underlying_transport.pause_reading()  # type: ignore[union-attr]
            vanished.add(conn)
            conn.closed.add_done_callback(lambda _f, c=conn: vanish_done(c))
            return
        if kind != "rst":
            try:
                await asyncio.wait_for(asyncio.shield(conn.closed), 10)
            except TimeoutError:
                counts["close_timeout"] += 1
                conn.reset()
        counts["cycles"] += 1

    async def run_loop() -> None:
        while loop.time() < deadline:
            await cycle()

    async def progress() -> None:
        while loop.time() < deadline:
            await asyncio.sleep(1.0)
            emit(event="progress", t=time.monotonic() - started,
                 cycles=counts["cycles"] + counts["vanish"], vanished_open=len(vanished))

    gc.freeze()
    ticker = loop.create_task(progress())
    await asyncio.gather(*(run_loop() for _ in range(args.loops)))
    storm_s = time.monotonic() - started
    ticker.cancel()
    # Vanished sockets are the server's to find: its heartbeat timeout closes them. They read
    # nothing, so the kernel tells us (TCP state past ESTABLISHED); then read the close frame.
    wait_until = loop.time() + args.vanish_wait
    while vanished and loop.time() < wait_until:
        await asyncio.sleep(0.2)
        for conn in list(vanished):
            transport = conn.transport.underlying_transport  # type: ignore[union-attr]
            sock = transport.get_extra_info("socket")
            if sock is None or sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO,
                                               1)[0] != TCP_ESTABLISHED:
                transport.resume_reading()
    for conn in list(vanished):
        conn.reset()
    emit(event="result", storm_s=storm_s, **counts, vanished_not_cut=len(vanished),
         vanish_close_codes={str(k): v for k, v in vanish_codes.items()})


# ----------------------------------------------------------------------------- stream


class StreamConn(Conn):
    def __init__(self, session: Session, record: StreamRecord) -> None:
        super().__init__(session)
        self.record = record
        #: Bytes it may still read before pausing (a slow consumer's allowance); None: no limit.
        self.budget: int | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self.budget is not None:
            self.budget -= len(frame.get_payload_as_memoryview())
            if self.budget <= 0:
                transport.underlying_transport.pause_reading()
        super().on_ws_frame(transport, frame)

    def on_welcome(self, welcome: Welcome) -> None:
        record = self.record
        for rec in welcome.recovery:
            if rec.topic != "$all" or not record.first:
                continue
            record.recovery.append({
                "resumed": welcome.resumed, "status": RecoveryStatus(rec.status).name,
                "replayed": rec.replayed, "lost_from": rec.lost_from, "lost_to": rec.lost_to})
            if rec.status == RecoveryStatus.FAILED and rec.position is not None:
                # Told what was lost: the stream goes on from the head (not a silent gap).
                record.lost += rec.position.offset - record.last
                record.last = rec.position.offset

    def on_stamp(self, offset: int, seq: int, sent_ns: int) -> None:
        rec = self.record
        rec.latencies_ns.append(time.monotonic_ns() - sent_ns)
        if offset != rec.last + 1 and rec.last:
            if offset <= rec.last:
                rec.duplicates += 1
                return
            rec.gaps.append((rec.last + 1, offset - 1))
        rec.first = rec.first or offset
        rec.last = offset
        rec.received += 1


class StreamRecord:
    """What one client (fast or slow) saw of the stream, across its connections."""

    def __init__(self) -> None:
        self.latencies_ns = array("q")
        self.first = 0
        self.last = 0
        self.received = 0
        self.duplicates = 0
        self.gaps: list[tuple[int, int]] = []
        self.cuts = 0
        self.errors: list[str] = []
        #: Messages a Welcome reported lost (RecoveryFailed), never received.
        self.lost = 0
        self.recovery: list[dict[str, Any]] = []


async def role_stream(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    fast = [StreamRecord() for _ in range(args.fast)]
    slow = [StreamRecord() for _ in range(args.slow)]

    async def open_for(record: StreamRecord, session: Session, rcvbuf: int = 0) -> StreamConn:
        conn = await open_conn(args.url, lambda: StreamConn(session, record), rcvbuf=rcvbuf)
        if conn is None:
            raise ConnectionError("could not connect")
        assert isinstance(conn, StreamConn)
        return conn

    fast_conns = await asyncio.gather(*(open_for(r, Session()) for r in fast))

    async def slow_client(record: StreamRecord, read_rate: int, stall: float) -> None:
        """Read ``read_rate`` bytes a second (0: nothing) for ``stall`` seconds, then at full
        speed: drain what the kernel holds, see the end of a connection the server cut meanwhile,
        reconnect and resume from the last position received (a phone out of a tunnel)."""
        try:
            await slow_run(record, read_rate, stall)
        except Exception as exc:  # reported, not lost with the task
            record.errors.append(repr(exc))

    async def slow_run(record: StreamRecord, read_rate: int, stall: float) -> None:
        session = Session()
        conn = await open_for(record, session, rcvbuf=args.slow_rcvbuf)
        conn.budget = 0
        transport = conn.transport.underlying_transport  # type: ignore[union-attr]
        sock = transport.get_extra_info("socket")
        tick = 0.25
        until = loop.time() + stall
        while not conn.closed.done() and loop.time() < until:
            # A server that resets the socket shows in TCP_INFO even while we do not read.
            if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != TCP_ESTABLISHED:
                break
            conn.budget = min(conn.budget, 0) + int(read_rate * tick)
            if conn.budget > 0:
                transport.resume_reading()
            await asyncio.wait([conn.closed], timeout=tick)
        conn.budget = None
        transport.resume_reading()
        await conn.closed
        record.cuts += 1
        # Back at full speed: resume from the last position we hold (see on_welcome).
        await open_for(record, session)

    # Half read nothing, half trickle; half come back after one stall, half after two.
    slow_tasks = [loop.create_task(slow_client(r, args.slow_read * ((i // 2) % 2),
                                               args.slow_stall * (1 + i % 2)))
                  for i, r in enumerate(slow)]
    await asyncio.sleep(0.5)
    emit(event="connected", fast=len(fast_conns), slow=len(slow))
    gc.freeze()
    reader = await stdin_lines()
    while line := await reader.readline():
        if line.strip() != b"stats":
            break
        emit(event="stats", fast_received=sum(r.received for r in fast),
             slow_received=sum(r.received for r in slow),
             fast_open=sum(1 for c in fast_conns if not c.closed.done()))
    for task in slow_tasks:
        task.cancel()

    def summary(records: list[StreamRecord]) -> dict[str, Any]:
        lat = sorted(x for r in records for x in r.latencies_ns)

        def pick(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] / 1e3 if lat else 0.0

        return {
            "clients": len(records),
            "received_min": min((r.received for r in records), default=0),
            "received_total": sum(r.received for r in records),
            "first_max": max((r.first for r in records), default=0),
            "last_min": min((r.last for r in records), default=0),
            "duplicates": sum(r.duplicates for r in records),
            "lost_reported": sum(r.lost for r in records),
            "gaps": sum(len(r.gaps) for r in records),
            "cuts": sum(r.cuts for r in records),
            "errors": [e for r in records for e in r.errors],
            "recovery": [x for r in records for x in r.recovery],
            "p50_us": pick(0.50), "p99_us": pick(0.99), "max_us": pick(1.0),
        }

    emit(event="result", fast=summary(fast), slow=summary(slow))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=("hold", "churn", "stream"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--conns", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--loops", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resume-share", type=float, default=0.2)
    parser.add_argument("--vanish-wait", type=float, default=20.0)
    parser.add_argument("--fast", type=int, default=200)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--slow-rcvbuf", type=int, default=64 * 1024)
    parser.add_argument("--slow-read", type=int, default=32 * 1024,
                        help="bytes/s the trickling half of the slow ones read")
    parser.add_argument("--slow-stall", type=float, default=8.0,
                        help="seconds the slow ones stay slow (half of them twice that)")
    args = parser.parse_args()
    raise_nofile()
    role = {"hold": role_hold, "churn": role_churn, "stream": role_stream}[args.role]
    uvloop.run(role(args))
    sys.stdout.flush()
    os._exit(0)  # skip tearing down thousands of connections one by one


if __name__ == "__main__":
    main()
