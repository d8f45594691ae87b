"""Chaos run: a TCP proxy cuts connections at random while messages flow both ways, and every
receiver checks that it got each message exactly once, in order.

    .venv/bin/python bench/chaos.py --duration 60 --clients 20 --seed 7 --backend both
    .venv/bin/python bench/chaos.py --kill-nodes --duration 20 --seed 7 --backend both

(``--kill-nodes``: SIGKILL whole nodes of a Redis-backed cluster instead of cutting
connections; bench/cluster_chaos.py, docs/chaos.md "Node kills".)

One run per backend (``asyncio``, ``trio``; ``both`` runs one after the other), all in one
process on 127.0.0.1: a real ``SigmaSocketServer`` of that adapter, a :class:`ChaosProxy` in
front of it, and N ``SigmaSocketClient`` of the *same* adapter connected through the proxy.

Traffic, at a steady rate for ``--duration`` seconds:

* up: each client sends ``u <client> <n> <padding>``, n = 1, 2, ...; the server checks each
  client's counters (once each, in order) and echoes every message to the sender's ``$inbox``;
* down: the server publishes ``r <n>`` to the topic ``room`` (every client subscribed) and
  broadcasts ``b <n>`` to ``$all``; each client checks ``$inbox``, ``room`` and ``$all``.

Padding has a length fixed by the counter (0..255 bytes, 4 KiB more every 13th message), so a
torn or spliced payload would show.

The proxy (seeded RNG; the seed is printed and ``--seed`` replays the same sequence of faults,
though not the same timing) hits a random live connection every so often with one of:

* ``reset``: RST both ways at once (SO_LINGER 0);
* ``midframe``: forward 0..511 more bytes one way (so mostly inside a frame), then close both
  sides, with RST or FIN;
* ``blackhole``: silently drop the bytes one way or both ways for 0.3..3 s (heartbeats must
  notice), then RST;
* ``halfclose``: FIN to one side only while the other direction keeps flowing, then RST after
  0.2..2 s if nobody closed;
* ``stall``: stop reading one way for 0.2..3 s, then forward what was held and go on (the
  connection survives unless a heartbeat timeout, 1.5 s here, ends it first);
* ``refuse``: for 0.2..1.5 s every new connection is reset as soon as it is accepted.

Then the traffic stops, the proxy stops cutting (pending blackholes are reset at once), and the
run waits (``--settle`` seconds at most) until every receiver has everything sent to it, plus a
short grace for late duplicates. It prints messages each way, cuts by kind, resumes, and lost,
duplicated and reordered counts per direction and topic; the exit status is 1 if anything was
lost, duplicated, reordered or corrupted, or if a client saw a RecoveryFailed, a SessionReset
or a fresh session (history is configured large enough that replay never has a gap).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import asdict, dataclass, field
from typing import Literal, TypeAlias

import anyio
from anyio.abc import Listener, SocketAttribute, SocketStream, TaskGroup

import sigma_asyncio
import sigma_trio
from sigma_core.api import ClientOptions, ServerOptions
from sigma_core.backplane import HistoryLimits
from sigma_core.client import ConnectionStatus, RecoveryFailed, SessionReset
from sigma_core.hub import Session

__all__ = [
    "ChaosConfig",
    "ChaosProxy",
    "Result",
    "StreamCheck",
    "main",
    "run_backend",
]

LOCAL = "127.0.0.1"
BACKENDS = ("asyncio", "trio")
ROOM = "room"

Server: TypeAlias = sigma_asyncio.SigmaSocketServer | sigma_trio.SigmaSocketServer
Client: TypeAlias = sigma_asyncio.SigmaSocketClient | sigma_trio.SigmaSocketClient
Direction = Literal["up", "down"]
DIRECTIONS: tuple[Direction, Direction] = ("up", "down")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosConfig:
    """One run's knobs (the CLI's flags)."""

    backend: str = "asyncio"
    seed: int = 1
    clients: int = 20
    #: Seconds of traffic under chaos.
    duration: float = 60.0
    #: Messages per second each client sends.
    client_rate: float = 20.0
    #: Messages per second the server publishes to the room, and as many broadcasts.
    server_rate: float = 20.0
    #: Mean seconds between two faults on one connection (the proxy draws a fault, on
    #: average, ``clients / mean_cut_interval`` times a second).
    mean_cut_interval: float = 3.0
    #: Longest wait, after the traffic stopped, for everything to arrive.
    settle: float = 30.0
    #: Heartbeats on both sides: a dead link is noticed after ``heartbeat_timeout``.
    heartbeat_interval: float = 0.5
    heartbeat_timeout: float = 1.5


# ----------------------------------------------------------------------------- receivers


@dataclass(slots=True)
class StreamCheck:
    """One ordered stream a receiver checks: counters 1, 2, ... each once, in order."""

    seen: set[int] = field(default_factory=set)
    top: int = 0
    duplicated: int = 0
    #: Arrivals that were not the next counter (a gap, filled later or never).
    reordered: int = 0
    #: Payloads that did not parse or had the wrong length or sender.
    corrupt: int = 0

    def observe(self, n: int) -> None:
        if n in self.seen:
            self.duplicated += 1
            return
        if n != self.top + 1:
            self.reordered += 1
        self.seen.add(n)
        self.top = max(self.top, n)

    def received(self, expected: int) -> int:
        """How many of 1..expected arrived."""
        return len(self.seen) if self.top <= expected else sum(
            1 for n in self.seen if n <= expected)

    def lost(self, expected: int) -> int:
        return expected - self.received(expected)


def padding(n: int) -> int:
    """Payload padding for counter ``n``: 0..255 bytes, and 4 KiB more every 13th message, so
    frames vary in size and some span several reads."""
    return (n * 7919) % 256 + (4096 if n % 13 == 0 else 0)


def encode(prefix: bytes, *numbers: int) -> bytes:
    head = prefix + b"".join(b" %d" % x for x in numbers) + b" "
    return head + b"x" * padding(numbers[-1])


def decode(data: bytes, prefix: bytes, fields: int) -> tuple[int, ...] | None:
    """The numbers of a payload made by :func:`encode`, or None if it is not intact."""
    parts = data.split(b" ", fields + 1)
    if len(parts) != fields + 2 or parts[0] != prefix:
        return None
    try:
        numbers = tuple(int(p) for p in parts[1:-1])
    except ValueError:
        return None
    if parts[-1] != b"x" * padding(numbers[-1]):
        return None
    return numbers


class ChaosClient:
    """One client and what it checks: its echoes (``$inbox``), the room and ``$all``."""

    def __init__(self, index: int, client: Client) -> None:
        self.index = index
        self.client = client
        self.sent = 0
        #: ``send`` said the unacked buffer was full (the message is retried, not lost).
        self.backpressure = 0
        self.streams = {"$inbox": StreamCheck(), ROOM: StreamCheck(), "$all": StreamCheck()}
        self.welcomes = 0
        self.resumes = 0
        self.fresh = 0
        self.recovery_failed: list[str] = []
        self.session_reset: list[str] = []
        self.closes: Counter[str] = Counter()
        self.foreign: list[str] = []
        self.subscribed = anyio.Event()
        client.on("message", self._on_message)
        client.on("connection", self._on_status)
        client.on("recovery_failed", self._on_recovery_failed)
        client.on("session_reset", self._on_session_reset)
        client.on("disconnection", self._on_disconnection)
        client.on("subscribed", self._on_subscribed)

    def _on_message(self, data: bytes, message_id: int, timestamp_ms: int, topic: str) -> None:
        stream = self.streams.get(topic)
        if stream is None:
            self.foreign.append(f"{topic}: {data[:40]!r}")
            return
        if topic == "$inbox":
            numbers = decode(data, b"e", 2)
            if numbers is None or numbers[0] != self.index:
                stream.corrupt += 1
                return
        else:
            numbers = decode(data, b"r" if topic == ROOM else b"b", 1)
            if numbers is None:
                stream.corrupt += 1
                return
        stream.observe(numbers[-1])

    def _on_status(self, status: ConnectionStatus) -> None:
        if status is not ConnectionStatus.CONNECTED:
            return
        self.welcomes += 1
        info = self.client.get_session()
        if info is not None and info.resumed:
            self.resumes += 1
        elif self.welcomes > 1:
            self.fresh += 1

    def _on_recovery_failed(self, event: RecoveryFailed) -> None:
        self.recovery_failed.append(f"{event.topic} {event.lost_from}..{event.lost_to}")

    def _on_session_reset(self, event: SessionReset) -> None:
        self.session_reset.append(event.reason)

    def _on_disconnection(self, code: int, reason: str) -> None:
        self.closes[str(code)] += 1

    def _on_subscribed(self, topic: str) -> None:
        if topic == ROOM:
            self.subscribed.set()

    def send_next(self) -> None:
        if self.client.send(encode(b"u", self.index, self.sent + 1)):
            self.sent += 1
        else:
            self.backpressure += 1


class ChaosApp:
    """The server's application: check each client's counters, echo, publish, broadcast."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.streams: dict[int, StreamCheck] = {}
        self.corrupt = 0
        self.echo_refused = 0
        self.published = 0
        self.broadcast = 0
        server.on("message", self._on_message)

    def _on_message(self, session: Session, data: bytes, topic: str) -> None:
        numbers = decode(data, b"u", 2)
        if numbers is None:
            self.corrupt += 1
            return
        client, n = numbers
        self.streams.setdefault(client, StreamCheck()).observe(n)
        if not self.server.send_to_client(session, encode(b"e", client, n)):
            self.echo_refused += 1

    def publish_next(self) -> None:
        self.published += 1
        self.server.publish(ROOM, encode(b"r", self.published))
        self.broadcast += 1
        self.server.broadcast(encode(b"b", self.broadcast))


# ----------------------------------------------------------------------------- the proxy


def _reset_on_close(stream: SocketStream) -> None:
    """Make closing ``stream`` send RST instead of FIN (an abrupt cut)."""
    with suppress(Exception):
        sock = stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class _Link:
    """One relayed connection. Cancelling ``scope`` ends it, with RST if ``reset``."""

    __slots__ = ("budget", "client_side", "doomed", "dropping", "half_closing", "id", "reset",
                 "scope", "server_side", "stalled_until")

    def __init__(self, link_id: int, client_side: SocketStream,
                 server_side: SocketStream) -> None:
        self.id = link_id
        self.client_side = client_side
        self.server_side = server_side
        self.scope = anyio.CancelScope()
        self.reset = True
        #: Already picked for a cut (it is not picked twice).
        self.doomed = False
        #: Directions whose bytes are read and thrown away.
        self.dropping: set[Direction] = set()
        #: Directions to end with FIN at their next chunk (then dropped).
        self.half_closing: set[Direction] = set()
        #: Bytes still forwarded in a direction before the link is closed.
        self.budget: dict[Direction, int] = {}
        #: A direction that stops reading (and so forwarding) until then.
        self.stalled_until: dict[Direction, float] = {}

    def streams(self, direction: Direction) -> tuple[SocketStream, SocketStream]:
        if direction == "up":
            return self.client_side, self.server_side
        return self.server_side, self.client_side


CUT_KINDS = ("reset", "midframe", "blackhole", "halfclose", "stall", "refuse")
CUT_WEIGHTS = (3, 3, 2, 1, 1, 1)


class ChaosProxy:
    """A TCP relay on a free local port in front of ``target_port`` that cuts connections at
    random (see the module's docstring for the kinds). ``cuts`` counts them by kind."""

    def __init__(self, target_port: int, rng: random.Random, *,
                 mean_interval: float) -> None:
        self.target_port = target_port
        self.port = 0
        #: Draws the faults: kinds, directions, durations, byte offsets.
        self.rng = rng
        #: Picks the connection, apart, so that how many are live at that moment (a matter of
        #: timing) does not change the sequence of faults a seed gives.
        self._pick = random.Random(rng.random())
        self.mean_interval = mean_interval
        self.cuts: Counter[str] = Counter()
        self.accepted = 0
        self.refused = 0
        self.bytes: Counter[str] = Counter()
        self._links: dict[int, _Link] = {}
        self._next_id = 0
        self._refuse_until = 0.0
        self._cutting = False
        self._task_group: TaskGroup | None = None

    @property
    def url(self) -> str:
        return f"ws://{LOCAL}:{self.port}/"

    async def run(self, task_group: TaskGroup) -> None:
        """Listen (in ``task_group``) until it is cancelled."""
        self._task_group = task_group
        listener = await anyio.create_tcp_listener(local_host=LOCAL, local_port=0)
        self.port = listener.extra(SocketAttribute.local_port)
        task_group.start_soon(self._serve, listener, task_group)

    async def _serve(self, listener: Listener[SocketStream], task_group: TaskGroup) -> None:
        async with listener:
            await listener.serve(self._handle, task_group)

    def start_chaos(self) -> None:
        assert self._task_group is not None
        self._cutting = True
        self._task_group.start_soon(self._chaos)

    def heal(self) -> None:
        """Stop cutting; links already picked for a cut are reset now (stalled ones too),
        refusals end."""
        self._cutting = False
        self._refuse_until = 0.0
        for link in list(self._links.values()):
            if link.doomed:
                link.reset = True
                link.scope.cancel()

    # -- the chaos

    async def _chaos(self) -> None:
        rng = self.rng
        while self._cutting:
            # The interval is drawn for the configured number of links, not the live ones,
            # so a wave of reconnects does not slow the cutting down.
            await anyio.sleep(rng.expovariate(1.0 / self.mean_interval))
            if not self._cutting:
                return
            # Every draw is made whatever the fault, so the seed alone fixes the sequence.
            kind = rng.choices(CUT_KINDS, CUT_WEIGHTS)[0]
            direction: Direction = DIRECTIONS[rng.randrange(2)]
            flip = rng.random() < 0.5  # midframe: RST (else FIN)
            both = rng.random() < 0.25  # blackhole: both directions
            offset = rng.randrange(512)  # midframe: bytes forwarded before the cut
            uniform = rng.random()  # the duration, within the kind's range
            if kind == "refuse":
                self._refuse_until = anyio.current_time() + 0.2 + 1.3 * uniform
                self.cuts[kind] += 1
                continue
            live = [link for _, link in sorted(self._links.items()) if not link.doomed]
            if not live:
                self.cuts["missed (no live connection)"] += 1
                continue
            link = self._pick.choice(live)
            link.doomed = True
            if kind == "reset":
                self.cuts[kind] += 1
                link.scope.cancel()
            elif kind == "midframe":
                link.reset = flip
                self.cuts[f"midframe {direction} {'rst' if flip else 'fin'}"] += 1
                link.budget[direction] = offset
                self._later(link, 3.0)  # in case that direction stays quiet
            elif kind == "blackhole":
                self.cuts[f"blackhole {'both' if both else direction}"] += 1
                link.dropping.update(DIRECTIONS if both else (direction,))
                self._later(link, 0.3 + 2.7 * uniform)
            elif kind == "stall":
                self.cuts[f"stall {direction}"] += 1
                duration = 0.2 + 2.8 * uniform
                link.stalled_until[direction] = anyio.current_time() + duration
                self._later(link, duration, close=False)
            else:
                self.cuts[f"halfclose {direction}"] += 1
                link.half_closing.add(direction)
                self._later(link, 0.2 + 1.8 * uniform)

    def _later(self, link: _Link, delay: float, *, close: bool = True) -> None:
        """Reset ``link`` after ``delay`` (or, ``close`` off, let it be picked again)."""
        async def reset_later() -> None:
            await anyio.sleep(delay)
            if close:
                link.reset = True
                link.scope.cancel()
            else:
                link.doomed = False

        assert self._task_group is not None
        self._task_group.start_soon(reset_later)

    # -- relaying

    async def _handle(self, client_side: SocketStream) -> None:
        self.accepted += 1
        if anyio.current_time() < self._refuse_until:
            self.refused += 1
            _reset_on_close(client_side)
            await anyio.aclose_forcefully(client_side)
            return
        try:
            server_side = await anyio.connect_tcp(LOCAL, self.target_port)
        except OSError:
            await anyio.aclose_forcefully(client_side)
            return
        self._next_id += 1
        link = _Link(self._next_id, client_side, server_side)
        self._links[link.id] = link
        try:
            with link.scope:
                async with anyio.create_task_group() as pumps:
                    pumps.start_soon(self._pump, link, "up")
                    pumps.start_soon(self._pump, link, "down")
                link.reset = False  # both directions ended by themselves
        finally:
            del self._links[link.id]
            with anyio.CancelScope(shield=True):
                for stream in (client_side, server_side):
                    if link.reset:
                        _reset_on_close(stream)
                    await anyio.aclose_forcefully(stream)

    async def _pump(self, link: _Link, direction: Direction) -> None:
        source, sink = link.streams(direction)
        try:
            async for chunk in source:
                self.bytes[direction] += len(chunk)
                stalled = link.stalled_until.pop(direction, 0.0) - anyio.current_time()
                if stalled > 0:  # hold this chunk and read no more meanwhile
                    await anyio.sleep(stalled)
                if direction in link.half_closing:
                    link.half_closing.discard(direction)
                    link.dropping.add(direction)
                    await sink.send_eof()
                if direction in link.dropping:
                    continue
                budget = link.budget.get(direction)
                if budget is not None:
                    if len(chunk) >= budget:
                        if budget:
                            await sink.send(chunk[:budget])
                        link.scope.cancel()
                        return
                    link.budget[direction] = budget - len(chunk)
                await sink.send(chunk)
            if direction not in link.dropping:
                await sink.send_eof()  # pass the half-close on
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            link.reset = True
            link.scope.cancel()  # one side was reset: reset the other


# ----------------------------------------------------------------------------- one run


@dataclass(slots=True, kw_only=True)
class Result:
    """What one run found (``ok`` is the verdict)."""

    backend: str
    seed: int
    clients: int
    duration: float
    wall_time: float = 0.0
    settle_time: float = 0.0
    settled: bool = False
    #: Per direction/topic: sent (expected), received once, lost, duplicated, reordered (an
    #: arrival that was not the next counter), corrupt.
    flows: dict[str, dict[str, int]] = field(default_factory=dict)
    cuts: dict[str, int] = field(default_factory=dict)
    proxy: dict[str, int] = field(default_factory=dict)
    clients_seen: dict[str, int] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)
    server: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def total_cuts(self) -> int:
        """Connections the proxy cut (stalls and refusal windows apart)."""
        return sum(n for kind, n in self.cuts.items()
                   if kind.split()[0] not in ("refuse", "stall", "missed"))


def _server(config: ChaosConfig) -> Server:
    options = ServerOptions(
        host=LOCAL, port=0,
        heartbeat_interval=config.heartbeat_interval,
        heartbeat_timeout=config.heartbeat_timeout,
        handshake_timeout=2.0,
        # Far more than a run publishes: replay must never have a gap.
        history=HistoryLimits(max_count=1_000_000, max_bytes=1 << 30, max_age=3600.0),
        shutdown_timeout=2.0)
    package = sigma_asyncio if config.backend == "asyncio" else sigma_trio
    server: Server = package.SigmaSocketServer(options)
    return server


def _client(config: ChaosConfig, url: str) -> Client:
    options = ClientOptions(
        url=url,
        reconnect_interval=0.05, max_reconnect_delay=0.5, max_reconnect_attempts=None,
        heartbeat_interval=config.heartbeat_interval,
        heartbeat_timeout=config.heartbeat_timeout,
        connect_timeout=2.0,
        max_pending=10_000,
        max_queued_messages=0)  # the message callback is all it uses
    package = sigma_asyncio if config.backend == "asyncio" else sigma_trio
    client: Client = package.SigmaSocketClient(options)
    return client


async def _every(interval: float, phase: float, running: Callable[[], bool],
                 action: Callable[[], None]) -> None:
    """Call ``action`` every ``interval`` seconds (no drift) while ``running()``."""
    at = anyio.current_time() + phase
    while True:
        await anyio.sleep(max(0.0, at - anyio.current_time()))
        if not running():
            return
        action()
        at += interval


async def run_backend(config: ChaosConfig) -> Result:
    """One chaos run on ``config.backend`` (call it under that anyio backend)."""
    rng = random.Random(config.seed)
    result = Result(backend=config.backend, seed=config.seed, clients=config.clients,
                    duration=config.duration)
    started = time.monotonic()
    server = _server(config)
    app = ChaosApp(server)
    traffic = True

    def running() -> bool:
        return traffic

    async with AsyncExitStack() as stack:
        await stack.enter_async_context(server)
        task_group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(task_group.cancel_scope.cancel)  # the proxy's tasks, at the end
        proxy = ChaosProxy(server.port, random.Random(rng.random()),
                           mean_interval=config.mean_cut_interval / config.clients)
        await proxy.run(task_group)
        clients: list[ChaosClient] = []
        # Not under a deadline: a trio client's nursery must close before any cancel scope
        # entered ahead of it ends. Nothing is cut yet, so connecting cannot hang.
        for index in range(config.clients):
            client = _client(config, proxy.url)
            checker = ChaosClient(index, client)
            client.subscribe(ROOM)
            await stack.enter_async_context(client)
            clients.append(checker)
        with anyio.fail_after(30):
            for checker in clients:
                await checker.subscribed.wait()

        # Traffic under chaos.
        proxy.start_chaos()
        task_group.start_soon(_every, 1.0 / config.server_rate, 0.0, running, app.publish_next)
        for checker in clients:
            task_group.start_soon(_every, 1.0 / config.client_rate,
                                  rng.random() / config.client_rate, running, checker.send_next)
        await anyio.sleep(config.duration)
        traffic = False
        proxy.heal()

        # Settle: everything sent must arrive.
        stopped = anyio.current_time()

        def complete() -> bool:
            for checker in clients:
                up = app.streams.get(checker.index, StreamCheck())
                if (up.received(checker.sent) < checker.sent
                        or checker.streams["$inbox"].received(checker.sent) < checker.sent
                        or checker.streams[ROOM].received(app.published) < app.published
                        or checker.streams["$all"].received(app.broadcast) < app.broadcast):
                    return False
            return True

        with anyio.move_on_after(config.settle):
            while not complete():
                await anyio.sleep(0.05)
        result.settled = complete()
        result.settle_time = anyio.current_time() - stopped
        await anyio.sleep(0.5)  # late duplicates would show up now
        _collect(result, app, clients, proxy, server)
    result.wall_time = time.monotonic() - started
    return result


def _collect(result: Result, app: ChaosApp, clients: list[ChaosClient], proxy: ChaosProxy,
             server: Server) -> None:
    def flow(pairs: list[tuple[StreamCheck, int]]) -> dict[str, int]:
        return {
            "sent": sum(expected for _, expected in pairs),
            "received": sum(check.received(expected) for check, expected in pairs),
            "lost": sum(check.lost(expected) for check, expected in pairs),
            "duplicated": sum(check.duplicated for check, _ in pairs),
            "reordered": sum(check.reordered for check, _ in pairs),
            "corrupt": sum(check.corrupt for check, _ in pairs),
        }

    result.flows = {
        "up (client -> server)": flow([(app.streams.get(c.index, StreamCheck()), c.sent)
                                       for c in clients]),
        "down $inbox (echoes)": flow([(c.streams["$inbox"], c.sent) for c in clients]),
        f"down {ROOM} (publish)": flow([(c.streams[ROOM], app.published) for c in clients]),
        "down $all (broadcast)": flow([(c.streams["$all"], app.broadcast) for c in clients]),
    }
    result.flows["up (client -> server)"]["corrupt"] += app.corrupt
    result.cuts = dict(sorted(proxy.cuts.items()))
    result.proxy = {"connections": proxy.accepted, "refused": proxy.refused,
                    "bytes up": proxy.bytes["up"], "bytes down": proxy.bytes["down"]}
    result.clients_seen = {
        "welcomes": sum(c.welcomes for c in clients),
        "resumed": sum(c.resumes for c in clients),
        "fresh after the first": sum(c.fresh for c in clients),
        "RecoveryFailed": sum(len(c.recovery_failed) for c in clients),
        "SessionReset": sum(len(c.session_reset) for c in clients),
        "send refused (buffer full)": sum(c.backpressure for c in clients),
    }
    closes: Counter[str] = Counter()
    for c in clients:
        closes.update(c.closes)
    result.closes = dict(sorted(closes.items()))
    stats = server.get_stats()
    result.server = {"connections": stats.total_connections, "resumes": stats.resumes,
                     "failed resumes": stats.failed_resumes,
                     "failed recoveries": stats.failed_recoveries,
                     "duplicates dropped": stats.duplicates_dropped,
                     "slow consumer cuts": stats.slow_consumer_disconnects,
                     "echo refused": app.echo_refused}

    failures = result.failures
    if not result.settled:
        failures.append(f"not everything arrived within {result.settle_time:.1f} s")
    for name, counts in result.flows.items():
        for key in ("lost", "duplicated", "reordered", "corrupt"):
            if counts[key]:
                failures.append(f"{name}: {counts[key]} {key}")
    for c in clients:
        where = f"client {c.index}"
        failures.extend(f"{where}: RecoveryFailed {text}" for text in c.recovery_failed)
        failures.extend(f"{where}: SessionReset ({text})" for text in c.session_reset)
        if c.fresh:
            failures.append(f"{where}: {c.fresh} fresh session(s) after the first")
        failures.extend(f"{where}: unexpected message {text}" for text in c.foreign)
        for topic, check in c.streams.items():
            expected = c.sent if topic == "$inbox" else (
                app.published if topic == ROOM else app.broadcast)
            if check.lost(expected) or check.duplicated or check.reordered:
                failures.append(f"{where} {topic}: lost {check.lost(expected)}, duplicated "
                                f"{check.duplicated}, reordered {check.reordered}; received "
                                f"up to {check.top} of {expected}")
        up = app.streams.get(c.index, StreamCheck())
        if up.lost(c.sent) or up.duplicated or up.reordered:
            failures.append(f"{where} up: lost {up.lost(c.sent)}, duplicated {up.duplicated}, "
                            f"reordered {up.reordered}; server has up to {up.top} of {c.sent}")
    if app.echo_refused:
        failures.append(f"the server could not echo {app.echo_refused} messages (no session)")


# ----------------------------------------------------------------------------- reporting


def table(results: list[Result]) -> str:
    """A Markdown table, one column per run."""
    rows: list[list[str]] = []

    def row(label: str, values: list[object]) -> None:
        rows.append([label, *(str(v) for v in values)])

    row("seed", [r.seed for r in results])
    row("clients x seconds", [f"{r.clients} x {r.duration:g}" for r in results])
    row("wall time (s)", [f"{r.wall_time:.1f}" for r in results])
    for name in results[0].flows:
        flows = [r.flows[name] for r in results]
        row(f"{name}: sent / received", [f"{f['sent']} / {f['received']}" for f in flows])
        row(f"{name}: lost / dup / reordered",
            [f"{f['lost']} / {f['duplicated']} / {f['reordered']}" for f in flows])
    row("connections cut (stalls, refusals, misses apart)", [r.total_cuts for r in results])
    for kind in sorted({kind for r in results for kind in r.cuts}):
        row(f"faults: {kind}", [r.cuts.get(kind, 0) for r in results])
    for key in results[0].proxy:
        row(f"proxy: {key}", [r.proxy[key] for r in results])
    for key in results[0].clients_seen:
        row(f"clients: {key}", [r.clients_seen[key] for r in results])
    codes = sorted({code for r in results for code in r.closes}, key=int)
    row("clients: closes by code", [", ".join(f"{code}: {r.closes[code]}" for code in codes
                                              if code in r.closes) or "-" for r in results])
    for key in results[0].server:
        row(f"server: {key}", [r.server[key] for r in results])
    row("settle time (s)", [f"{r.settle_time:.2f}" for r in results])
    row("result", ["PASS" if r.ok else "FAIL" for r in results])

    header = ["", *(r.backend for r in results)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if "--kill-nodes" in args_in:
        # Nodes, not connections: N node processes on one Redis, killed at random
        # (bench/cluster_chaos.py, docs/chaos.md "Node kills").
        import os.path
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if root not in sys.path:
            sys.path.insert(0, root)
        from bench import cluster_chaos
        return cluster_chaos.main(list(args_in))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--client-rate", type=float, default=20.0,
                        help="messages/s each client sends")
    parser.add_argument("--server-rate", type=float, default=20.0,
                        help="room publishes/s, and as many broadcasts/s")
    parser.add_argument("--mean-cut-interval", type=float, default=3.0,
                        help="mean seconds between two cuts of one connection")
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--verbose", action="store_true",
                        help="show the adapters' warnings (every lost connection)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"chaos: seed {seed}", flush=True)
    results = []
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        config = ChaosConfig(backend=backend, seed=seed, clients=args.clients,
                             duration=args.duration, client_rate=args.client_rate,
                             server_rate=args.server_rate,
                             mean_cut_interval=args.mean_cut_interval, settle=args.settle)
        print(f"chaos: {backend}, {args.clients} clients, {args.duration:g} s ...", flush=True)
        result = anyio.run(run_backend, config, backend=backend)
        results.append(result)
        for failure in result.failures:
            print(f"  FAIL {backend}: {failure}")
    print(table(results))
    if args.json:
        print(json.dumps([{**asdict(r), "ok": r.ok} for r in results]))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
