"""The Redis/Valkey cluster engine: an :class:`~sigma_core.engine.EngineDriver` on coredis.

Theory of operation
-------------------
The hub stays sans-IO: it queues :class:`~sigma_core.engine.EngineRequest` objects, the adapter
hands them to :meth:`RedisEngine.submit` (never blocks) and runs :meth:`RedisEngine.run` in its
task group / nursery. ``run`` owns one coredis client (anyio: the same code on asyncio and trio)
and three tasks:

* the **batcher** takes every queued request (at most ``max_batch``) and sends them as one
  pipeline on its own connection (:mod:`._wire`; coredis carries the watchdog's commands),
  in submission order, with one batch in flight at a time: the per-topic order of
  appends is the submission order (the interface asks for it), and under load batches grow
  instead of round trips multiplying (group commit). Each result goes back through
  ``inputs.engine_result``.
* the **receiver** holds one pub/sub connection and subscribes to the channel of every topic
  the hub asked to :class:`~sigma_core.engine.Receive`; each message (published by the append
  script with its position) goes to ``inputs.engine_message`` in the order Redis sent it.
* the **watchdog** pings Redis every ``health_interval`` (unless a pipeline was answered within
  it) and reports up/down transitions with
  ``inputs.engine_status``; after an outage it reloads the scripts before saying "up".

Limits (each with its behaviour when reached, see docs/cluster.md): a batch without an answer
after ``request_timeout`` fails every request in it (``EngineFailed("timeout ...")``) and marks
the engine down until a ping succeeds; more than ``max_queued`` waiting requests fail the
excess at once (``EngineFailed("engine queue full ...")``); pub/sub messages the node cannot
keep up with wait in Redis (the subscriber reads only as fast as the hub takes them), bounded
by Redis' ``client-output-buffer-limit pubsub``; past it Redis drops the connection, the
receiver resubscribes and the hub's heads check reads what was missed from history.

What Redis returns is checked: a key of the wrong type, a meta hash or session hash that is
not ours, a stream entry that is truncated or out of sequence → the request fails (appends,
saves) or reads as an explicit gap (history), with a warning logged, never an exception in the
hub or the loop.
"""

from __future__ import annotations

import logging
import math
import os
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import coredis
import coredis.exceptions
from coredis.connection import TCPLocation
from coredis.typing import ResponseType

from sigma_core.backplane import HistoryLimits
from sigma_core.engine import (
    Append,
    Appended,
    DeleteSession,
    Done,
    DropTopic,
    EngineFailed,
    EngineInputs,
    EngineRequest,
    EngineResult,
    Heads,
    HistoryEntry,
    LoadSession,
    PresenceMembers,
    PresenceMissing,
    PresenceRead,
    PresenceRefresh,
    PresenceUpdate,
    RangeRead,
    ReadHeads,
    ReadRange,
    Receive,
    RecordError,
    ReplayGap,
    Route,
    SaveSession,
    SessionLoaded,
    SessionSaved,
    StopReceiving,
    TouchSession,
)
from sigma_core.messages import StreamPosition
from sigma_core.metrics import Histogram, HistogramSnapshot

from . import _lua
from ._cluster import SlotMap, hash_slot
from ._pubsub import (
    ChannelMoved,
    Connection,
    ProtocolError,
    Redirected,
    ReplyError,
    Subscriber,
    ask,
)
from ._url import Endpoint, RedisTarget, parse_target, redact
from ._wire import Pipe, Wire

__all__ = ["DeploymentMismatch", "EngineDataError", "RedisEngine", "RedisEngineConfig",
           "parse_message"]

_log = logging.getLogger("sigma_redis")

_MAX_U64 = (1 << 64) - 1
#: Topics per HEADS script call (one INFO and one round trip for all of them).
_HEADS_CHUNK = 256


class EngineDataError(ValueError):
    """What Redis holds under one of our keys is not what the engine wrote."""


class DeploymentMismatch(ConnectionError):
    """The URL names another kind of deployment than the server is: a ``redis+cluster://``
    URL pointing at a single server or the other way round, a Sentinel URL naming a service
    its sentinels do not know, or a server where a sentinel was expected. The engine stays
    down with this reason (``status_reason``, logged as an error) and checks again every
    ``health_interval``."""


def _info_field(info: bytes, name: bytes) -> bytes | None:
    for line in info.split(b"\r\n"):
        key, sep, value = line.partition(b":")
        if sep and key == name:
            return value.strip()
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisEngineConfig:
    """How a node reaches Redis and what it keeps there. Durations in seconds."""

    #: Where Redis is, and which kind of deployment (docs/cluster.md, "Redis URLs"): one
    #: server ``redis://[user:password@]host:port/db`` (``rediss://``: TLS; ``unix:///path``),
    #: a Redis Cluster ``redis+cluster://host:port[,host:port...]`` (startup nodes), or a
    #: Sentinel service ``redis+sentinel://host:port[,host:port...]/service[/db]``.
    url: str = "redis://127.0.0.1:6379/0"
    #: First part of every key and channel (several apps can share one Redis).
    prefix: str = "sigma"
    #: History kept per topic: count and bytes trimmed by the append script, age by entry time
    #: (older entries read as gone) and by the stream key's TTL (an idle topic's history
    #: disappears ``max_age`` after its last message). 0 disables a bound.
    history: HistoryLimits = field(default_factory=HistoryLimits)
    #: A topic's meta hash (epoch, last offset) lives this long after its last append, so
    #: offsets are never reused while a client may still hold a position in that epoch; after
    #: it the topic starts a new epoch (a resuming client gets an explicit loss).
    meta_ttl: float = 86_400.0
    #: Fence each topic's epoch with Redis' replication id (see :mod:`sigma_redis._lua`). Turn
    #: off only where ``INFO`` is refused to scripts; then a failover that lost writes reuses
    #: offsets (the anchors' behaviour) — docs/cluster.md.
    fence_replication_id: bool = True
    #: A pipeline (or a connection attempt) without an answer after this long fails.
    request_timeout: float = 2.0
    #: Requests waiting for the batcher, at most; beyond it they fail at once.
    max_queued: int = 100_000
    #: Requests per pipeline, at most.
    max_batch: int = 512
    #: How often the watchdog pings Redis (and, while it is down, tries to reconnect); no ping
    #: when a pipeline was answered within the interval.
    health_interval: float = 0.5

    def __post_init__(self) -> None:
        parse_target(self.url)  # ValueError with the reason when the URL cannot work
        if not self.prefix or "{" in self.prefix or "}" in self.prefix:
            raise ValueError("RedisEngineConfig.prefix must be non-empty, without braces")
        for name in ("max_queued", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"RedisEngineConfig.{name} must be >= 1")
        for name in ("request_timeout", "health_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"RedisEngineConfig.{name} must be finite and > 0")
        if not (math.isfinite(self.meta_ttl) and self.meta_ttl >= 0):
            raise ValueError("RedisEngineConfig.meta_ttl must be finite and >= 0")

    @property
    def target(self) -> RedisTarget:
        """The deployment :attr:`url` names (kind, servers, service)."""
        return parse_target(self.url)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def parse_message(data: bytes) -> HistoryEntry:
    """A pub/sub message as the append script publishes it: ``"<epoch> <offset> <time ms>
    <route length> " + route + envelope``. Raises :class:`EngineDataError`."""
    try:
        epoch_b, offset_b, time_b, route_len_b, rest = data.split(b" ", 4)
        epoch, offset, time_ms, route_len = (int(epoch_b), int(offset_b), int(time_b),
                                              int(route_len_b))
    except ValueError:
        raise EngineDataError("malformed pub/sub message header") from None
    if not (0 < epoch <= _MAX_U64 and 0 < offset <= _MAX_U64 and 0 <= route_len <= len(rest)):
        raise EngineDataError("pub/sub message position out of range")
    try:
        route = Route.from_bytes(rest[:route_len]) if route_len else None
    except RecordError as exc:
        raise EngineDataError(str(exc)) from None
    return HistoryEntry(epoch, offset, time_ms / 1000, rest[route_len:], route)


def _entry(row: Any, epoch: int) -> HistoryEntry:
    """One XRANGE row ``[id, [field, value, ...]]`` as a history entry, checked."""
    try:
        entry_id, fields = row
        ms_b, seq_b = bytes(entry_id).split(b"-")
        offset = int(ms_b)
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        envelope = values[b"d"]
        time_ms = int(values[b"t"])
        route_raw = values.get(b"r", b"")
    except (ValueError, TypeError, KeyError):
        raise EngineDataError("truncated or foreign stream entry") from None
    if seq_b != b"0" or not 0 < offset <= _MAX_U64 or not isinstance(envelope, bytes):
        raise EngineDataError(f"stream entry id {entry_id!r} is not a sigma offset")
    try:
        route = Route.from_bytes(route_raw) if route_raw else None
    except RecordError as exc:
        raise EngineDataError(str(exc)) from None
    return HistoryEntry(epoch, offset, time_ms / 1000, envelope, route)


def _epoch(raw: Any) -> int:
    try:
        epoch = int(raw)
    except (TypeError, ValueError):
        raise EngineDataError(f"epoch {raw!r} is not a number") from None
    if not 0 <= epoch <= _MAX_U64:
        raise EngineDataError("epoch out of range")
    return epoch


_Call = Callable[[Any], Awaitable[ResponseType]]


#: Upper bounds (seconds) of the engine's latency and cross-node lag histograms.
LATENCY_BOUNDS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25, 0.5, 1.0, 2.5, 5.0)

_OPERATION_NAMES: dict[type, str] = {}


def operation_name(request: EngineRequest) -> str:
    """The metrics label of a request: its class name in snake case (``AppendMessage`` ->
    ``append_message``)."""
    kind = type(request)
    name = _OPERATION_NAMES.get(kind)
    if name is None:
        name = _OPERATION_NAMES[kind] = "".join(
            f"_{c.lower()}" if c.isupper() else c for c in kind.__name__).lstrip("_")
    return name


class RedisEngine:
    """The driver. ``RedisEngine(RedisEngineConfig(url=...))``; give it to ``ServerOptions``
    (``engine=``); the adapter submits requests and runs it."""

    def __init__(self, config: RedisEngineConfig | None = None, *,
                 logger: logging.Logger | None = None) -> None:
        self.config = config = config or RedisEngineConfig()
        self._log = logger or _log
        self._queue: deque[EngineRequest] = deque()
        self._wake: anyio.Event | None = None
        self._inputs: EngineInputs | None = None
        self._shas: dict[str, bytes] = {}
        self._up = False
        self._down_reason = "not started"
        self._receiving: dict[bytes, str] = {}  # channel -> topic
        self._subscribe_queue: deque[tuple[EngineRequest, bytes]] = deque()
        self._subscribe_wake: anyio.Event | None = None
        #: Counters for stats and benchmarks.
        self.batches = 0
        self.commands = 0
        self.received = 0
        self.data_errors = 0
        #: Per operation (:func:`operation_name`): seconds from sending its pipeline to the
        #: answer (queueing before the pipeline not included), and how many failed.
        self._latency: dict[str, Histogram] = {}
        self._failures: dict[str, int] = {}
        #: Seconds from a message's append (the appending node's wall clock) to its arrival
        #: here over pub/sub; across machines it includes their clock difference.
        self._lag = Histogram(LATENCY_BOUNDS)
        limits = config.history
        self._max_count = limits.max_count
        self._max_bytes = limits.max_bytes
        self._max_age_ms = _ms(limits.max_age)
        self._meta_ttl_ms = _ms(config.meta_ttl)
        self._fence = b"1" if config.fence_replication_id else b"0"
        self._target = config.target
        #: Redis Cluster: sharded pub/sub (the append script SPUBLISHes to the shard owning
        #: the topic's slot, receivers SSUBSCRIBE there) and HEADS grouped by slot.
        self._sharded = self._target.kind == "cluster"
        self._publish = b"SPUBLISH" if self._sharded else b"PUBLISH"
        self._client: Any = None
        #: Cluster: the receiver's slot map, and nodes learned from it (startup candidates).
        self._slots: SlotMap | None = None
        self._known_nodes: tuple[Endpoint, ...] = ()
        self._delivered_before = False
        self._verified = False
        #: One server: the batcher's own connection (:mod:`._wire`); Cluster and Sentinel
        #: deployments send their pipelines through coredis. The watchdog uses coredis.
        self._wire = Wire(config.url, connect_timeout=config.request_timeout) \
            if self._target.kind == "standalone" else None
        self._wire_stale = False
        #: The batcher waits for work with nothing in flight: ``submit`` may then write the
        #: pipeline itself (:meth:`_send_now`) and leave the replies to the batcher.
        self._batcher_idle = False
        #: A pipeline ``submit`` wrote: (its requests, its plan, when it was written).
        self._sent: tuple[list[EngineRequest], _Planned, float] | None = None
        #: When the batcher last had a pipeline answered (time.monotonic()).
        self._answered_at = -math.inf

    # ------------------------------------------------------------------ names

    def topic_key(self, topic: str, kind: str) -> str:
        """The key (kind ``m``, ``s``, ``p``, ``i``) or channel (``c``) of ``topic``."""
        return f"{self.config.prefix}:{{{topic}}}:{kind}"

    def session_key(self, session_id: str) -> str:
        return f"{self.config.prefix}:session:{{{session_id}}}"

    # ------------------------------------------------------------------ health

    def is_ready(self) -> bool:
        """True while Redis answers (the watchdog's last ping or batch succeeded); the
        readiness hook of the server's health endpoint."""
        return self._up

    @property
    def status_reason(self) -> str:
        """Why the engine is not ready ("" while it is)."""
        return "" if self._up else self._down_reason

    def operation_latency(self) -> dict[str, HistogramSnapshot]:
        """Latency of each operation kind so far (seconds; :data:`LATENCY_BOUNDS`)."""
        return {op: h.snapshot() for op, h in self._latency.items()}

    def operation_errors(self) -> dict[str, int]:
        """Failed requests per operation kind so far: Redis down or timed out, queue full,
        script errors, corrupt data."""
        return dict(self._failures)

    def cross_node_lag(self) -> HistogramSnapshot:
        """Seconds from each received message's append to its arrival on this node."""
        return self._lag.snapshot()

    def _failed(self, request: EngineRequest, reason: str) -> None:
        op = operation_name(request)
        self._failures[op] = self._failures.get(op, 0) + 1
        self._answer(EngineFailed(request_id=request.request_id, reason=reason))

    def _set_status(self, up: bool, reason: str) -> None:
        if up == self._up:
            if not up and reason != self._down_reason:
                # Still down, for another reason (the first one after starting, too).
                self._down_reason = reason
                level = logging.ERROR if reason.startswith("DeploymentMismatch") else \
                    logging.WARNING
                self._log.log(level, "cluster engine unavailable: %s", reason)
            return
        self._up = up
        self._down_reason = reason
        if up:
            self._log.warning("cluster engine reachable (%s)", redact(self.config.url))
        else:
            self._log.warning("cluster engine unavailable: %s", reason)
            self._wire_stale = True  # the batcher opens a new connection when it is back
        if self._inputs is not None:
            self._inputs.engine_status(up, reason)

    # ------------------------------------------------------------------ driver API

    def submit(self, requests: Sequence[EngineRequest]) -> None:
        """Queue requests (never blocks). Receive/StopReceiving go to the pub/sub task."""
        queue = self._queue
        for request in requests:
            if isinstance(request, Receive | StopReceiving):
                self._subscribe_queue.append(
                    (request, self.topic_key(request.topic, "c").encode()))
                if self._subscribe_wake is not None:
                    self._subscribe_wake.set()
            elif len(queue) >= self.config.max_queued:
                self._failed(request,
                             f"engine queue full ({self.config.max_queued} requests waiting)")
            else:
                queue.append(request)
        if self._wake is not None:
            if self._batcher_idle and queue:
                self._send_now()
            self._wake.set()

    def _send_now(self) -> None:
        """Write the queued requests' pipeline at once, from ``submit`` — not one event-loop
        turn later from the batcher — when the batcher is idle, Redis up and the batcher's
        own connection ready (one server, no TLS); the batcher reads the replies. Anything
        in the way (scripts not loaded yet, the connection to be opened, a write error):
        the requests stay queued for the batcher, in order."""
        wire = self._wire
        if wire is None or not self._up or self._wire_stale or not wire.can_send_now or \
                "APPEND" not in self._shas:
            return
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(len(queue), self.config.max_batch))]
        try:
            planned = self._plan_batch(batch)
            wire.send_now(b"".join(planned.pipe.commands))
        except Exception:  # nothing was sent: the batcher takes them, and meets the error
            queue.extendleft(reversed(batch))
            return
        self._sent = (batch, planned, time.perf_counter())
        self._batcher_idle = False

    def _answer(self, result: EngineResult) -> None:
        if self._inputs is not None:
            self._inputs.engine_result(result)

    async def run(self, inputs: EngineInputs) -> None:
        """Serve requests until cancelled."""
        self._inputs = inputs
        self._wake = anyio.Event()
        self._subscribe_wake = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._receiver)
                tg.start_soon(self._batcher)
                await self._keeper()
        finally:
            self._inputs = None
            self._client = None
            self._up = False
            self._down_reason = "stopped"
            if self._wire is not None:
                await self._wire.close()

    # ------------------------------------------------------------------ connection

    def _open_client(self) -> Any:
        """The coredis client for the URL's deployment (an async context manager)."""
        target, timeout = self._target, self.config.request_timeout
        if target.kind == "standalone":
            return coredis.Redis.from_url(self.config.url, decode_responses=False,
                                          connect_timeout=timeout, stream_timeout=timeout)
        if target.kind == "cluster":
            return coredis.RedisCluster(
                startup_nodes=[TCPLocation(e.host, e.port) for e in dict.fromkeys(
                    (*self._known_nodes, *target.endpoints))],
                username=target.username, password=target.password, ssl=target.tls,
                decode_responses=False, connect_timeout=timeout, stream_timeout=timeout)
        return self._sentinel_client(target)

    @asynccontextmanager
    async def _sentinel_client(self, target: RedisTarget) -> AsyncIterator[Any]:
        timeout = self.config.request_timeout
        tls: dict[str, Any] = {"ssl_context": ssl.create_default_context()} \
            if target.tls else {}
        sentinel: coredis.Sentinel[bytes] = coredis.Sentinel(
            [TCPLocation(e.host, e.port) for e in target.endpoints],
            sentinel_kwargs={"connect_timeout": timeout, "stream_timeout": timeout,
                             "decode_responses": False, **tls},
            decode_responses=False, connect_timeout=timeout, stream_timeout=timeout,
            username=target.username, password=target.password, db=target.db, **tls)
        async with sentinel:
            primary = sentinel.primary_for(target.service)
            async with primary:
                yield primary

    async def _keeper(self) -> None:
        """Own the coredis client: check that the URL names the kind of deployment it says,
        open the client, then watch it. Until that works the engine is down with the reason
        (a URL naming the wrong kind of server says so, see :meth:`_check_deployment`)."""
        while True:
            try:
                if not self._verified:
                    with anyio.fail_after(self.config.request_timeout):
                        await self._check_deployment()
                    self._verified = True  # a deployment does not change its kind
                opened = self._open_client()
                try:
                    async with opened as client:
                        self._client = client
                        await self._watchdog()
                finally:
                    _close_layout_streams(opened)
            except Exception as exc:
                self._set_status(False, _describe(exc))
            finally:
                self._client = None
            await anyio.sleep(self.config.health_interval)

    async def _check_deployment(self) -> None:
        """``INFO server``'s ``redis_mode`` (or, for Sentinel, the service's primary) must
        match the URL's kind; raises :class:`DeploymentMismatch` saying what to use instead.
        Servers that refuse ``INFO`` (some managed services) are not checked. Until it passed
        once (then the client is opened without it)."""
        target = self._target
        if target.kind == "sentinel":
            await self._sentinel_primary()
            return
        errors = []
        for endpoint in target.endpoints:
            try:
                reply = await ask(endpoint, b"INFO", b"server",
                                  timeout=self.config.request_timeout / len(target.endpoints))
            except (OSError, TimeoutError) as exc:
                errors.append(f"{endpoint}: {_describe(exc)}")
                continue
            if not isinstance(reply, bytes):
                return  # INFO refused (renamed, ACL): nothing to check against
            mode = _info_field(reply, b"redis_mode")
            url = redact(self.config.url)
            if target.kind == "cluster" and mode == b"standalone":
                raise DeploymentMismatch(
                    f"{url} names a Redis Cluster, but {endpoint} is a single server "
                    f"(cluster support disabled): use redis://{endpoint}")
            if target.kind == "standalone" and mode == b"cluster":
                raise DeploymentMismatch(
                    f"{url} names a single server, but {endpoint} is a Redis Cluster node: "
                    f"use redis+cluster://{endpoint}")
            if mode == b"sentinel":
                raise DeploymentMismatch(
                    f"{url} names a Redis server, but {endpoint} is a Sentinel: use "
                    f"redis+sentinel://{endpoint}/<service>")
            return
        raise ConnectionError("no server reachable: " + "; ".join(errors))

    async def _sentinel_primary(self) -> Endpoint:
        """The service's primary, asked of each sentinel in turn (``SENTINEL
        get-master-addr-by-name``); a clear error when none knows the service or none
        answers."""
        target = self._target
        errors = []
        unknown = []
        for endpoint in target.endpoints:
            try:
                reply = await ask(endpoint, b"SENTINEL", b"get-master-addr-by-name",
                                  target.service.encode(),
                                  timeout=self.config.request_timeout / len(target.endpoints))
            except (OSError, TimeoutError) as exc:
                errors.append(f"{endpoint}: {_describe(exc)}")
                continue
            if isinstance(reply, ReplyError):
                if "unknown command" in str(reply).lower():
                    raise DeploymentMismatch(
                        f"{redact(self.config.url)} names sentinels, but {endpoint} is not a "
                        f"Sentinel (SENTINEL is an unknown command there): use "
                        f"redis://{endpoint} for a single server, redis+cluster://{endpoint} "
                        f"for a Cluster node")
                errors.append(f"{endpoint}: {reply}")
                continue
            if reply is None:
                unknown.append(str(endpoint))
                continue
            try:
                host, port = bytes(reply[0]).decode(), int(reply[1])  # type: ignore[index]
            except (TypeError, ValueError, IndexError, UnicodeDecodeError):
                errors.append(f"{endpoint}: unexpected answer {reply!r:.80}")
                continue
            return target.server(host, port)
        if unknown and not errors:
            raise DeploymentMismatch(
                f"Sentinel service {target.service!r} is unknown to {', '.join(unknown)} "
                f"(no 'sentinel monitor {target.service} ...' there)")
        raise ConnectionError(f"no sentinel named a primary for {target.service!r}: "
                              + "; ".join(errors + [f"{u}: unknown service" for u in unknown]))

    # ------------------------------------------------------------------ watchdog

    _SCRIPTS = ("APPEND", "READ", "HEADS", "SAVE_SESSION", "PRESENCE_UPDATE", "PRESENCE_REFRESH",
                "PRESENCE_READ")

    async def _load_scripts(self) -> None:
        if not self._sharded:
            for name in self._SCRIPTS:
                self._shas[name] = await self._client.script_load(getattr(_lua, name))
            return
        # Redis Cluster: on every primary of the current slot map, on connections of our own
        # (coredis would send SCRIPT LOAD to every node it knows, and fail while one of them
        # is dead — a killed primary lingers in its layout). A replica promoted later answers
        # NOSCRIPT, and the batch loads them again (on the primaries of the new map).
        slots = await self._slot_map()
        for endpoint in slots.nodes:
            conn = Connection(endpoint, connect_timeout=self.config.request_timeout,
                              idle_timeout=max(2.0, 2 * self.config.request_timeout))
            try:
                await conn.connect()
                for name in self._SCRIPTS:
                    reply = await conn.request(b"SCRIPT", b"LOAD",
                                               getattr(_lua, name).encode())
                    if not isinstance(reply, bytes):
                        raise ConnectionError(f"{endpoint} refused SCRIPT LOAD: {reply}")
                    self._shas[name] = reply
            finally:
                with anyio.CancelScope(shield=True):
                    await conn.aclose()

    async def _watchdog(self) -> None:
        interval = self.config.health_interval
        while True:
            if self._up and time.monotonic() - self._answered_at < interval:
                # A pipeline was answered within the interval: Redis is up, no ping needed
                # (a node that publishes pays for no health checks).
                await anyio.sleep(interval)
                continue
            try:
                with anyio.fail_after(self.config.request_timeout):
                    if not self._up:
                        await self._load_scripts()
                    await self._client.ping()
            except Exception as exc:
                self._set_status(False, _describe(exc))
                if self._sharded:
                    # coredis' cluster layout keeps a dead primary after its replica took
                    # over (ping fans out to it and fails): build the client again from the
                    # slot map as it is now.
                    return
            else:
                self._set_status(True, "")
            await anyio.sleep(interval)

    # ------------------------------------------------------------------ batcher

    async def _batcher(self) -> None:
        queue = self._queue
        while True:
            if self._sent is not None:
                batch, planned, started = self._sent
                self._sent = None
                await self._run_batch(batch, planned, started)
                continue
            if not queue:
                assert self._wake is not None
                self._batcher_idle = True
                try:
                    await self._wake.wait()
                finally:
                    self._batcher_idle = False
                self._wake = anyio.Event()
                continue
            if not self._up:
                # Fail fast while Redis is down: the hub refuses new work meanwhile.
                reason = f"cluster engine unavailable: {self._down_reason}"
                while queue:
                    self._failed(queue.popleft(), reason)
                continue
            batch = [queue.popleft() for _ in range(min(len(queue), self.config.max_batch))]
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[EngineRequest], sent: _Planned | None = None,
                         started: float | None = None) -> None:
        """One pipeline for ``batch`` (``sent``: already written by :meth:`_send_now`, at
        ``started``) and its results to the hub."""
        self.batches += 1
        results: list[EngineResult] | None = None
        if started is None:
            started = time.perf_counter()
        try:
            with anyio.fail_after(self.config.request_timeout):
                answers = await self._execute(batch, sent)
                missing = [i for i, answer in enumerate(answers) if answer is None]
                if missing:
                    # NOSCRIPT (Redis restarted or failed over; on Cluster perhaps one shard
                    # only): load the scripts, send again just the requests that met it —
                    # the others were carried out and must not be repeated. A topic's
                    # requests of this batch went to one server: retried together, in order.
                    await self._load_scripts()
                    again = await self._execute([batch[i] for i in missing])
                    if any(answer is None for answer in again):
                        raise EngineDataError("scripts vanished again right after loading")
                    for i, answer in zip(missing, again, strict=True):
                        answers[i] = answer
                results = [answer for answer in answers if answer is not None]
                lost = next((r.reason for r in results if isinstance(r, EngineFailed)
                             and r.reason.startswith(_LOST_PREFIX)), None)
                if lost is not None:
                    self._set_status(False, lost.removeprefix(_LOST_PREFIX))
        except TimeoutError:
            self._set_status(False, f"no answer within {self.config.request_timeout} s")
            reason = f"timeout: Redis did not answer within {self.config.request_timeout} s"
        except Exception as exc:
            reason = _describe(exc)
            self._set_status(False, reason)
            if "READONLY" in reason:
                # Sentinel demoted the server these connections reach (a failover with the
                # old primary alive): new connections ask Sentinel for the primary again.
                self._drop_command_connections()
        if results is None:
            for request in batch:
                self._failed(request, reason)
            return
        elapsed = time.perf_counter() - started
        self._answered_at = time.monotonic()
        latency = self._latency
        failures = self._failures
        for request, result in zip(batch, results, strict=True):
            op = operation_name(request)
            histogram = latency.get(op)
            if histogram is None:
                histogram = latency[op] = Histogram(LATENCY_BOUNDS)
            histogram.observe(elapsed)
            if isinstance(result, EngineFailed):
                failures[op] = failures.get(op, 0) + 1
            self._answer(result)

    async def _execute(self, batch: list[EngineRequest], sent: _Planned | None = None
                       ) -> list[EngineResult | None]:
        """One pipeline for the batch: a result per request, None for a request that met
        NOSCRIPT. A request whose server could not be reached (on Cluster: one shard) fails
        alone; the others keep their results."""
        if self._wire is not None:
            return await self._execute_on_wire(self._wire, batch, sent)
        finishers: list[Callable[[list[Any]], EngineResult]] = []
        calls: list[list[Any]] = []  # per request, the awaitables of its commands
        async with self._client.pipeline(transaction=False, raise_on_error=False) as pipe:
            for request in batch:
                awaitables, finish = self._plan(pipe, request)
                calls.append(awaitables)
                finishers.append(finish)
        self.commands += sum(len(c) for c in calls)
        results: list[EngineResult | None] = []
        for request, awaitables, finish in zip(batch, calls, finishers, strict=True):
            replies: list[Any] = []
            noscript = False
            lost: BaseException | None = None
            for pending in awaitables:
                try:
                    replies.append(await pending)
                except coredis.exceptions.NoScriptError:
                    noscript = True
                except coredis.exceptions.ResponseError as exc:
                    replies.append(exc)
                except (coredis.exceptions.RedisError, OSError) as exc:
                    lost = exc
            if lost is not None:
                results.append(EngineFailed(request_id=request.request_id,
                                            reason=_LOST_PREFIX + _describe(lost)))
                continue
            if noscript:
                results.append(None)
                continue
            results.append(self._finish(request, finish, replies))
        return results

    def _finish(self, request: EngineRequest, finish: Callable[[list[Any]], EngineResult],
                replies: list[Any]) -> EngineResult:
        """A request's result from its commands' replies; data that is not what the engine
        wrote (a foreign key, a truncated entry) fails that request, logged, and counted."""
        try:
            return finish(replies)
        except EngineDataError as exc:
            self.data_errors += 1
            self._log.warning("cluster engine: corrupt data for %s: %s",
                              type(request).__name__, exc)
            return EngineFailed(request_id=request.request_id,
                                reason=f"corrupt data in Redis: {exc}")

    def _plan_batch(self, batch: list[EngineRequest]) -> _Planned:
        planned = _Planned(Pipe(), [], [])
        for request in batch:
            indexes, finish = self._plan(planned.pipe, request)
            planned.calls.append(indexes)
            planned.finishers.append(finish)
        return planned

    async def _execute_on_wire(self, wire: Wire, batch: list[EngineRequest],
                               sent: _Planned | None = None) -> list[EngineResult | None]:
        """:meth:`_execute` on one server: the pipeline written and read on the batcher's own
        connection (:mod:`._wire`), two task hops and ~125 µs of CPU less per round trip than
        a coredis pipeline (``sent``: written already, only the replies to read). A
        connection failure fails the whole batch (one server)."""
        if sent is not None:
            planned = sent
            answers = await wire.finish(len(planned.pipe.commands))
        else:
            planned = self._plan_batch(batch)
            if self._wire_stale or not wire.is_open:
                self._wire_stale = False
                await wire.close()
                await wire.open()
            answers = await wire.execute(planned.pipe.commands)
        self.commands += len(answers)
        results: list[EngineResult | None] = []
        for request, indexes, finish in zip(batch, planned.calls, planned.finishers,
                                            strict=True):
            replies = [answers[index] for index in indexes]
            if any(isinstance(r, coredis.exceptions.NoScriptError) for r in replies):
                results.append(None)
                continue
            results.append(self._finish(request, finish, replies))
        return results

    def _heads_chunks(self, topics: Sequence[str]) -> list[list[int]]:
        """Indexes of ``topics`` per HEADS call: at most ``_HEADS_CHUNK`` topics each, and on
        Redis Cluster only topics of one hash slot (a script's keys must share a slot)."""
        if not self._sharded:
            return [list(range(start, min(start + _HEADS_CHUNK, len(topics))))
                    for start in range(0, len(topics), _HEADS_CHUNK)]
        by_slot: dict[int, list[int]] = {}
        for i, topic in enumerate(topics):
            by_slot.setdefault(hash_slot(self.topic_key(topic, "m").encode()), []).append(i)
        return [indexes[start:start + _HEADS_CHUNK] for indexes in by_slot.values()
                for start in range(0, len(indexes), _HEADS_CHUNK)]

    def _candidate(self) -> bytes:
        return str(int.from_bytes(os.urandom(8), "big") or 1).encode()

    def _plan(self, pipe: Any, request: EngineRequest
              ) -> tuple[list[Any], Callable[[list[Any]], EngineResult]]:
        rid = request.request_id
        shas = self._shas
        if isinstance(request, Append):
            topic = request.topic
            route = request.route.to_bytes() if request.route is not None else b""
            now_ms = int(time.time() * 1000)
            call = pipe.evalsha(shas["APPEND"], keys=[self.topic_key(topic, "m"),
                                                      self.topic_key(topic, "s")],
                                args=[self._candidate(), request.envelope,
                                      _ms(request.wall_time), route,
                                      self.topic_key(topic, "c"), self._publish,
                                      self._max_count, self._max_bytes, self._max_age_ms,
                                      self._meta_ttl_ms, now_ms, self._fence])

            def appended(replies: list[Any]) -> EngineResult:
                reply = _check(replies[0])
                epoch, offset = _epoch(reply[0]), int(reply[1])
                return Appended(request_id=rid, topic=topic,
                                position=StreamPosition(epoch, offset))
            return [call], appended
        if isinstance(request, ReadRange):
            return self._plan_read(pipe, request)
        if isinstance(request, ReadHeads):
            create = b"1" if request.create else b"0"
            topics = request.topics
            chunks = self._heads_chunks(topics)
            calls = []
            for chunk in chunks:
                keys = [key for i in chunk
                        for key in (self.topic_key(topics[i], "m"),
                                    self.topic_key(topics[i], "s"))]
                calls.append(pipe.evalsha(
                    shas["HEADS"], keys=keys,
                    args=[create, self._fence, self._meta_ttl_ms,
                          *(self._candidate() for _ in chunk)]))

            def heads(replies: list[Any]) -> EngineResult:
                found: list[StreamPosition | None] = [None] * len(topics)
                for chunk, raw in zip(chunks, replies, strict=True):
                    flat = _check(raw)
                    for j, i in enumerate(chunk):
                        epoch_raw, offset_raw = flat[2 * j], flat[2 * j + 1]
                        if epoch_raw == b"!":
                            raise EngineDataError(bytes(offset_raw).decode(errors="replace")
                                                  .replace("SIGMA_CORRUPT ", ""))
                        found[i] = StreamPosition(_epoch(epoch_raw), int(offset_raw))
                return Heads(request_id=rid, heads=tuple(
                    (topic, position) for topic, position in zip(topics, found, strict=True)
                    if position is not None))
            return calls, heads
        if isinstance(request, DropTopic):
            t = request.topic
            call = pipe.delete([self.topic_key(t, k) for k in ("m", "s", "p", "i")])
            return [call], lambda replies: _done(rid, replies)
        if isinstance(request, SaveSession):
            call = pipe.evalsha(shas["SAVE_SESSION"], keys=[self.session_key(request.session_id)],
                                args=[request.version, request.record,
                                      0 if math.isinf(request.ttl) else max(1, _ms(request.ttl))])
            sid = request.session_id

            def saved(replies: list[Any]) -> EngineResult:
                return SessionSaved(request_id=rid, session_id=sid,
                                    stored=int(_check(replies[0])) == 1)
            return [call], saved
        if isinstance(request, TouchSession):
            key = self.session_key(request.session_id)
            if math.isinf(request.ttl):
                call = pipe.persist(key)
            else:
                call = pipe.pexpire(key, max(1, _ms(request.ttl)))
            return [call], lambda replies: _done(rid, replies)
        if isinstance(request, LoadSession):
            sid = request.session_id
            key = self.session_key(sid)
            call = pipe.hget(key, "r")

            def loaded(replies: list[Any]) -> EngineResult:
                reply = replies[0]
                if isinstance(reply, coredis.exceptions.WrongTypeError):
                    raise EngineDataError(f"{key} holds another type, not a session hash")
                reply = _check(reply)
                if reply is not None and not isinstance(reply, bytes):
                    raise EngineDataError(f"{key} field r is not a string")
                return SessionLoaded(request_id=rid, session_id=sid, record=reply)
            return [call], loaded
        if isinstance(request, DeleteSession):
            call = pipe.delete([self.session_key(request.session_id)])
            return [call], lambda replies: _done(rid, replies)
        if isinstance(request, PresenceUpdate):
            t = request.topic
            args: list[Any] = [max(1, _ms(request.ttl)), len(request.joins)]
            for member, info in request.joins:
                args += [member, info]
            args += list(request.leaves)
            call = pipe.evalsha(shas["PRESENCE_UPDATE"],
                                keys=[self.topic_key(t, "p"), self.topic_key(t, "i")], args=args)
            return [call], lambda replies: _done(rid, replies)
        if isinstance(request, PresenceRefresh):
            t = request.topic
            asked = request.members
            call = pipe.evalsha(shas["PRESENCE_REFRESH"],
                                keys=[self.topic_key(t, "p"), self.topic_key(t, "i")],
                                args=[max(1, _ms(request.ttl)), *asked])

            def missing(replies: list[Any]) -> EngineResult:
                raw = _check(replies[0])
                wanted = set(asked)
                try:
                    gone = tuple(bytes(m).decode() for m in raw)
                except (UnicodeDecodeError, TypeError):
                    raise EngineDataError("presence refresh returned a foreign member") from None
                if not wanted.issuperset(gone):
                    raise EngineDataError("presence refresh returned a member not asked for")
                return PresenceMissing(request_id=rid, topic=t, members=gone)
            return [call], missing
        if isinstance(request, PresenceRead):
            t = request.topic
            call = pipe.evalsha(shas["PRESENCE_READ"],
                                keys=[self.topic_key(t, "p"), self.topic_key(t, "i")])

            def members(replies: list[Any]) -> EngineResult:
                flat = _check(replies[0])
                try:
                    pairs = tuple(sorted((bytes(flat[i]).decode(), bytes(flat[i + 1]))
                                         for i in range(0, len(flat), 2)))
                except (UnicodeDecodeError, TypeError, IndexError):
                    raise EngineDataError("presence member is not a session id") from None
                return PresenceMembers(request_id=rid, topic=t, members=pairs)
            return [call], members
        raise TypeError(f"RedisEngine cannot carry out {type(request).__name__}")

    def _plan_read(self, pipe: Any, request: ReadRange
                   ) -> tuple[list[Any], Callable[[list[Any]], EngineResult]]:
        rid, topic, after = request.request_id, request.topic, request.after
        call = pipe.evalsha(self._shas["READ"], keys=[self.topic_key(topic, "m"),
                                                      self.topic_key(topic, "s")],
                            args=[self._candidate(), str(after.epoch), after.offset,
                                  request.max_count or 1 << 40, self._fence,
                                  self._meta_ttl_ms])
        max_bytes = request.max_bytes or 1 << 62  # 0: no bound, as for the memory engine
        max_age_ms = self._max_age_ms

        def read(replies: list[Any]) -> EngineResult:
            reply = replies[0]
            if isinstance(reply, coredis.exceptions.ResponseError):
                # Unusable history is lost history: an explicit gap, logged.
                self.data_errors += 1
                self._log.warning("cluster engine: history of %r unreadable: %s", topic, reply)
                return RangeRead(request_id=rid, topic=topic, head=StreamPosition(0, 0),
                                 gap=ReplayGap(after.offset + 1, 0))
            epoch, last = _epoch(reply[0]), int(reply[1])
            head = StreamPosition(epoch, last)
            wanted = after.offset + 1
            if epoch != after.epoch or after.offset > last or epoch == 0:
                return RangeRead(request_id=rid, topic=topic, head=head,
                                 gap=ReplayGap(wanted, 0))
            if after.offset == last:
                return RangeRead(request_id=rid, topic=topic, head=head)
            rows = reply[2] if len(reply) > 2 else []
            horizon = (time.time() * 1000 - max_age_ms) / 1000 if max_age_ms else -math.inf
            entries: list[HistoryEntry] = []
            size = 0
            try:
                for row in rows:
                    entry = _entry(row, epoch)
                    if not entries:
                        if entry.offset != wanted or entry.time < horizon:
                            break  # the first wanted entry is gone: a gap, below
                    elif entry.offset != wanted + len(entries):
                        raise EngineDataError(f"stream of {topic!r} skips from "
                                              f"{wanted + len(entries) - 1} to {entry.offset}")
                    elif size + entry.size > max_bytes:
                        break
                    entries.append(entry)
                    size += entry.size
            except EngineDataError as exc:
                self.data_errors += 1
                self._log.warning("cluster engine: history of %r corrupt: %s", topic, exc)
                return RangeRead(request_id=rid, topic=topic, head=head,
                                 gap=ReplayGap(wanted, last))
            if not entries:
                # The first wanted entry is gone (trimmed or older than max_age): say up to
                # where, from the first entry still held and young enough.
                first_kept = last + 1
                for row in rows:
                    try:
                        entry = _entry(row, epoch)
                    except EngineDataError:
                        break
                    if entry.time >= horizon:
                        first_kept = entry.offset
                        break
                return RangeRead(request_id=rid, topic=topic, head=head,
                                 gap=ReplayGap(wanted, first_kept - 1))
            return RangeRead(request_id=rid, topic=topic, head=head, entries=tuple(entries))
        return [call], read

    # ------------------------------------------------------------------ receiver

    async def _receiver(self) -> None:
        """Pub/sub (``_pubsub.Subscriber``): one connection per server that serves received
        topics' channels — the one server, the primary Sentinel names, or on Redis Cluster
        each shard owning a received channel's slot (``SSUBSCRIBE``). After any failure (a
        connection lost, a slot moved — ``MOVED`` or a ``sunsubscribe`` Redis sent itself —,
        Sentinel announcing ``+switch-master``) every connection is closed and the set is
        built again from a fresh view of the deployment (slot map, Sentinel's answer). Messages
        published meanwhile were never delivered: the hub is told to check every head and
        reads them from history."""
        assert self._subscribe_wake is not None
        while True:
            subscribers: dict[Endpoint, Subscriber] = {}
            pause = self.config.health_interval
            try:
                await self._deliver(subscribers)
            except BaseException as exc:
                leaves = _leaves(exc)
                if not leaves or not all(isinstance(e, _LOST) for e in leaves):
                    raise
                if any(isinstance(e, _PrimarySwitched) for e in leaves):
                    self._drop_command_connections()
                if all(isinstance(e, _MOVED) for e in leaves):
                    # Not a failure: ask where the channels are now, soon, and keep the
                    # queued subscriptions.
                    self._log.info("cluster engine: pub/sub rerouted: %s", _describe(exc))
                    pause = min(pause, 0.05)
                else:
                    self._fail_subscriptions(exc)
            finally:
                with anyio.CancelScope(shield=True):
                    for subscriber in subscribers.values():
                        await subscriber.aclose()
            await anyio.sleep(pause)

    async def _deliver(self, subscribers: dict[Endpoint, Subscriber]) -> None:
        """One generation of subscriber connections (in ``subscribers``), until one fails."""
        async with anyio.create_task_group() as tg:
            locate = await self._locator(tg)

            async def subscriber_for(channel: bytes) -> Subscriber:
                endpoint = locate(channel)
                subscriber = subscribers.get(endpoint)
                if subscriber is None:
                    subscriber = subscribers[endpoint] = Subscriber(
                        endpoint, self._on_message,
                        connect_timeout=self.config.request_timeout,
                        idle_timeout=max(2.0, 4 * self.config.request_timeout),
                        sharded=self._sharded)
                    await subscriber.connect()
                    tg.start_soon(subscriber.serve)
                return subscriber

            if not self._sharded:
                await subscriber_for(b"")  # one server: connect now
            for channel in list(self._receiving):
                await (await subscriber_for(channel)).subscribe(channel)
            if self._delivered_before and self._up and self._inputs is not None:
                # Messages published while the subscriber was away were never delivered:
                # the hub checks every head now (and returns to its shortest heads
                # interval).
                self._inputs.engine_status(True, "message delivery reconnected")
            self._delivered_before = True
            await self._serve_subscriptions(subscriber_for)

    def _drop_command_connections(self) -> None:
        """Close the command connections (coredis opens new ones on the next request: with
        Sentinel, to the primary it names now)."""
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    async def _locator(self, tg: anyio.abc.TaskGroup) -> Callable[[bytes], Endpoint]:
        """Where each channel is served, as the deployment says now."""
        target = self._target
        if target.kind == "standalone":
            endpoint = target.endpoints[0]
            return lambda channel: endpoint
        if target.kind == "sentinel":
            with anyio.fail_after(self.config.request_timeout):
                primary = await self._sentinel_primary()
            tg.start_soon(self._watch_switch_master, primary)
            return lambda channel: primary
        slots = await self._slot_map()

        def owner(channel: bytes) -> Endpoint:
            slot = hash_slot(channel)
            endpoint = slots.owner(slot)
            if endpoint is None:
                raise ConnectionError(f"no Redis Cluster node serves slot {slot}")
            return endpoint
        return owner

    async def _slot_map(self) -> SlotMap:
        """``CLUSTER SLOTS`` of the first node that answers: the startup nodes, then the
        nodes learned from earlier maps (the startup nodes may all be gone by now)."""
        errors = []
        candidates = dict.fromkeys((*self._target.endpoints, *self._known_nodes))
        for endpoint in candidates:
            try:
                reply = await ask(endpoint, b"CLUSTER", b"SLOTS",
                                  timeout=self.config.request_timeout)
                if isinstance(reply, ReplyError):
                    raise reply
                slots = SlotMap.from_reply(reply, endpoint)
            except (OSError, TimeoutError, ValueError) as exc:
                errors.append(f"{endpoint}: {_describe(exc)}")
                continue
            self._slots = slots
            self._known_nodes = tuple(dict.fromkeys((*slots.nodes, *self._known_nodes)))[:64]
            return slots
        raise ConnectionError("no Redis Cluster node answered CLUSTER SLOTS: "
                              + "; ".join(errors))

    async def _watch_switch_master(self, primary: Endpoint) -> None:
        """Sentinel: raise :class:`_PrimarySwitched` when a sentinel announces
        ``+switch-master`` for our service (the receiver then asks again and moves). Without
        a sentinel to listen to, the receiver still moves when its connection to the old
        primary ends."""
        service = self._target.service.encode()
        switched = anyio.Event()

        def on_message(channel: bytes, data: bytes) -> None:
            if data.split(b" ", 1)[0] == service:
                switched.set()

        for endpoint in self._target.endpoints:
            watcher = Subscriber(endpoint, on_message,
                                 connect_timeout=self.config.request_timeout,
                                 idle_timeout=max(2.0, 4 * self.config.request_timeout))
            try:
                await watcher.connect()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watcher.serve)
                    await watcher.subscribe(b"+switch-master")
                    await switched.wait()
                    tg.cancel_scope.cancel()
            except BaseException as exc:
                leaves = _leaves(exc)
                if not leaves or not all(isinstance(e, _LOST) for e in leaves):
                    raise
                continue  # that sentinel is gone: listen to the next one
            finally:
                with anyio.CancelScope(shield=True):
                    await watcher.aclose()
            raise _PrimarySwitched(f"Sentinel switched the primary of {service.decode()!r} "
                                   f"away from {primary}")

    def _fail_subscriptions(self, exc: BaseException) -> None:
        self._log.debug("cluster engine: pub/sub connection lost: %s", exc)
        while self._subscribe_queue:
            request, _ = self._subscribe_queue.popleft()
            self._failed(request, f"cluster engine unavailable: {_describe(exc)}")

    async def _serve_subscriptions(
            self, subscriber_for: Callable[[bytes], Awaitable[Subscriber]]) -> None:
        queue = self._subscribe_queue
        while True:
            if not queue:
                assert self._subscribe_wake is not None
                await self._subscribe_wake.wait()
                self._subscribe_wake = anyio.Event()
                continue
            request, channel = queue[0]
            if isinstance(request, Receive):
                if channel not in self._receiving:
                    await (await subscriber_for(channel)).subscribe(channel)
                    self._receiving[channel] = request.topic
            elif channel in self._receiving:
                del self._receiving[channel]
                await (await subscriber_for(channel)).subscribe(channel, subscribe=False)
            queue.popleft()
            self._answer(Done(request_id=request.request_id))

    def _on_message(self, channel: bytes, data: bytes) -> None:
        topic = self._receiving.get(channel)
        if topic is None or self._inputs is None:
            return
        self.received += 1
        try:
            entry = parse_message(data)
        except EngineDataError as exc:
            self.data_errors += 1
            self._log.warning("cluster engine: dropped a malformed message on %r: %s",
                              topic, exc)
            return
        self._lag.observe(max(0.0, time.time() - entry.time))
        self._inputs.engine_message(topic, entry)


def _check(reply: Any) -> Any:
    if isinstance(reply, BaseException):
        text = str(reply)
        if "SIGMA_CORRUPT" in text or isinstance(reply, coredis.exceptions.WrongTypeError):
            raise EngineDataError(text.replace("SIGMA_CORRUPT ", ""))
        raise reply
    return reply


def _done(rid: int, replies: list[Any]) -> EngineResult:
    for reply in replies:
        _check(reply)
    return Done(request_id=rid)


def _close_layout_streams(client: Any) -> None:
    """coredis 6's cluster layout never closes its error stream pair (anyio memory streams),
    which then warn (``ResourceWarning: Unclosed ...``) when collected; close them once the
    client is done. Nothing happens on clients without them."""
    layout = getattr(getattr(client, "connection_pool", None), "cluster_layout", None)
    for stream in getattr(layout, "_error_stream", None) or ():
        close = getattr(stream, "close", None)
        if close is not None:
            close()


#: The reason of a request whose server could not be reached within its batch.
_LOST_PREFIX = "cluster engine unavailable: "


@dataclass(slots=True)
class _Planned:
    """A batch's pipeline on the batcher's own connection: the packed commands, per request
    the indexes of its replies, and what makes its result of them."""

    pipe: Pipe
    calls: list[list[int]]
    finishers: list[Callable[[list[Any]], EngineResult]]


class _PrimarySwitched(ConnectionError):
    """Sentinel announced a new primary for our service."""


#: Failures the receiver survives (it reconnects); among them the reroutes, after which it
#: asks where channels are now without failing the queued subscriptions.
_LOST = (OSError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream,
         anyio.ClosedResourceError, ProtocolError)
_MOVED = (Redirected, ChannelMoved, _PrimarySwitched)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
