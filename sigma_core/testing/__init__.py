"""Deterministic testing of SigmaSockets apps: a virtual clock and a simulated network.

Everything runs in one thread with no real time and no real sockets: the simulation advances a
:class:`VirtualClock` from one scheduled thing to the next (a packet arriving, a timer falling
due), so a test that covers ten minutes of heartbeats and reconnects runs in milliseconds and
does the same thing every time for the same seed.

A :class:`Simulation` holds one server (:attr:`Simulation.hub`) and any number of clients
(:meth:`Simulation.add_client`). Each client connection travels over a :class:`SimLink` with a
latency and, optionally, random chunking of the byte stream. Faults are commands:

* :meth:`Simulation.cut` — the link breaks after N more bytes (either end sees the socket close,
  mid-frame if N says so);
* :meth:`Simulation.blackhole` — the link silently drops everything (no FIN: only heartbeats
  can find out); :meth:`Simulation.isolate` also makes new connections fail until
  :meth:`Simulation.heal`;
* :meth:`Simulation.restart_server` — every link breaks and the server loses all its memory
  (new hub, new backplane), as a process restart without a shared backplane would.

Example::

    sim = Simulation(seed=7)
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.hub.broadcast(b"hello", sim.now)
    sim.run(0.1)
    assert alice.payloads() == [b"hello"]
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..client import (
    ClientConfig,
    ClientEvent,
    ClientSession,
    CloseTransport,
    ConnectionStatus,
    MessageReceived,
    OpenTransport,
    ReconnectPolicy,
)
from ..entropy import SeededEntropy
from ..hub import Hub, HubConfig, HubEvent

__all__ = [
    "ClusterSimulation",
    "SimClient",
    "SimEngine",
    "SimLink",
    "SimNode",
    "Simulation",
    "VirtualClock",
]


class VirtualClock:
    """Time that only moves when told to."""

    __slots__ = ("now",)

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self.now += seconds
        return self.now

    def set(self, now: float) -> None:
        if now < self.now:
            raise ValueError("time does not run backwards")
        self.now = now


@dataclass(slots=True)
class SimLink:
    """One simulated TCP connection between a client attempt and the hub."""

    client: SimClient
    attempt: int
    #: The server node this link reached (None until established).
    node: SimNode | None = None
    conn_id: int | None = None
    #: Bytes still allowed through (both directions together) before the link breaks.
    cut_after: int | None = None
    blackholed: bool = False
    #: Whether each end still has its socket open.
    client_open: bool = True
    hub_open: bool = False
    bytes_c2s: int = 0
    bytes_s2c: int = 0
    #: Server->client bytes written to the "socket" and not yet delivered.
    s2c_in_flight: int = 0
    s2c_busy_until: float = 0.0
    paused: bool = False


class SimNode:
    """One server process: a hub and the links it accepted. A crash replaces ``hub`` (memory
    gone) and bumps ``incarnation``, so what was in flight to the old process is discarded."""

    def __init__(self, name: str, hub: Hub) -> None:
        self.name = name
        self.hub = hub
        self.incarnation = 0
        #: False while crashed (connections to it are refused).
        self.alive = True
        #: False while drained: the load balancer sends no new connection here.
        self.accepting = True
        self.links: dict[int, SimLink] = {}

    def __repr__(self) -> str:
        return f"<SimNode {self.name}{'' if self.alive else ' (down)'}>"


class SimClient:
    """A :class:`~sigma_core.client.ClientSession` living in a :class:`Simulation`, with the
    events it produced kept for assertions."""

    def __init__(self, sim: Simulation, session: ClientSession, name: str) -> None:
        self.sim = sim
        self.session = session
        self.name = name
        self.events: list[ClientEvent] = []
        #: The same events with the virtual time each was emitted at.
        self.timeline: list[tuple[float, ClientEvent]] = []
        self.link: SimLink | None = None
        #: Off the network (see :meth:`Simulation.isolate`).
        self.isolated = False
        #: Server->client bytes per second on this client's links (None: unlimited).
        self.bandwidth: float | None = None
        #: On a cluster: the node the load balancer sends this client to (None: any).
        self.pinned: str | None = None

    @property
    def connected(self) -> bool:
        return self.session.status is ConnectionStatus.CONNECTED

    def messages(self, topic: str | None = None) -> list[MessageReceived]:
        return [e for e in self.events if isinstance(e, MessageReceived)
                and (topic is None or e.topic == topic)]

    def payloads(self, topic: str | None = None) -> list[bytes]:
        return [e.payload for e in self.messages(topic)]

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def send(self, payload: bytes, *, topic: str = "") -> int:
        seq = self.session.send(payload, self.sim.now, topic=topic)
        self.sim._pump_client(self)
        return seq

    def subscribe(self, topic: str) -> int:
        request = self.session.subscribe(topic, self.sim.now)
        self.sim._pump_client(self)
        return request

    def unsubscribe(self, topic: str) -> int:
        request = self.session.unsubscribe(topic, self.sim.now)
        self.sim._pump_client(self)
        return request

    def disconnect(self) -> None:
        self.session.disconnect(self.sim.now)
        self.sim._pump_client(self)

    def connect(self) -> None:
        self.session.connect(self.sim.now)
        self.sim._pump_client(self)


class Simulation:
    """A server, clients and the network between them, on a virtual clock."""

    def __init__(self, hub_config: HubConfig | None = None, *, seed: int = 0,
                 latency: float = 0.005, chunking: bool = True, now: float = 0.0,
                 socket_buffer: int = 256 * 1024) -> None:
        self.clock = VirtualClock(now)
        #: Server->client bytes a socket holds before the hub is told to pause writing
        #: (it resumes below a quarter of it). Only matters for throttled clients.
        self.socket_buffer = socket_buffer
        self.hub_config = hub_config or HubConfig()
        self.latency = latency
        self.chunking = chunking
        self._rng = SeededEntropy(seed)
        self._seed = seed
        self._restarts = 0
        #: The server processes (one here; see ClusterSimulation).
        self.nodes: list[SimNode] = [SimNode("node0", self._new_hub(0, now))]
        #: Every event a hub emitted, across restarts (and nodes).
        self.hub_events: list[HubEvent] = []
        #: For each of ``hub_events``: the node's name and incarnation (crashes) that emitted it.
        self.hub_event_sources: list[tuple[str, int]] = []
        self.clients: list[SimClient] = []
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._handlers: list[Callable[[HubEvent], None]] = []
        #: The hub whose events the handlers are being given (on a cluster: the node's).
        self.event_hub = self.nodes[0].hub
        self._seq = 0

    @property
    def now(self) -> float:
        return self.clock.now

    @property
    def hub(self) -> Hub:
        """The (first) node's hub."""
        return self.nodes[0].hub

    def _new_hub(self, index: int, now: float) -> Hub:
        return Hub(self.hub_config,
                   entropy=SeededEntropy(self._seed * 1000 + 1 + self._restarts + 7 * index),
                   now=now)

    def _pick_node(self, client: SimClient) -> SimNode | None:
        """The load balancer: which node a new connection reaches (None: refused)."""
        node = self.nodes[0]
        return node if node.alive and node.accepting else None

    # ------------------------------------------------------------------ setup

    def add_client(self, config: ClientConfig | None = None, *, name: str = "",
                   connect: bool = True) -> SimClient:
        """A new client (connecting at once unless ``connect=False``)."""
        config = config or ClientConfig(url="ws://sim.invalid/",
                                        reconnect=ReconnectPolicy(max_attempts=None))
        index = len(self.clients)
        session = ClientSession(config, entropy=SeededEntropy(self._seed * 7919 + index + 2))
        client = SimClient(self, session, name or f"client{index}")
        self.clients.append(client)
        if connect:
            client.connect()
        return client

    # ------------------------------------------------------------------ faults

    def cut(self, client: SimClient, after_bytes: int = 0) -> None:
        """Break ``client``'s current link once ``after_bytes`` more bytes have crossed it."""
        link = client.link
        if link is None or not (link.client_open or link.hub_open):
            return
        link.cut_after = after_bytes
        if after_bytes <= 0:
            self._break(link)

    def throttle(self, client: SimClient, bytes_per_second: float | None) -> None:
        """Limit server->client bandwidth of the client's links (None: unlimited). A socket
        holding more than ``socket_buffer`` unsent bytes pauses the hub's writing."""
        client.bandwidth = bytes_per_second

    def blackhole(self, client: SimClient) -> None:
        """From now on the link drops everything silently, in both directions."""
        if client.link is not None:
            client.link.blackholed = True

    def isolate(self, client: SimClient) -> None:
        """Take the client off the network: its link goes silent (no FIN) and new connections
        fail, until :meth:`heal`."""
        client.isolated = True
        self.blackhole(client)

    def heal(self, client: SimClient) -> None:
        """Let an isolated client connect again (its old link stays dead)."""
        client.isolated = False

    def restart_server(self, hub_config: HubConfig | None = None) -> None:
        """Kill the server: every link breaks and all server memory is lost."""
        if hub_config is not None:
            self.hub_config = hub_config
        self._crash(self.nodes[0])
        self._revive(self.nodes[0])

    def _crash(self, node: SimNode) -> None:
        for link in list(node.links.values()):
            self._break(link, notify_hub=False)
        node.links.clear()
        node.alive = False
        node.incarnation += 1

    def _revive(self, node: SimNode) -> None:
        self._restarts += 1
        node.hub = self._new_hub(self.nodes.index(node), self.now)
        node.alive = True
        node.accepting = True

    # ------------------------------------------------------------------ running

    def run(self, duration: float) -> None:
        """Advance time by ``duration``, processing everything due on the way."""
        self._run(self.now + duration, None)

    def run_until(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        """Run until ``condition()`` holds; AssertionError after ``timeout`` virtual seconds."""
        end = self.now + timeout
        self._run(end, condition)
        if not condition():
            raise AssertionError(f"condition not met within {timeout} virtual seconds")

    def _run(self, end: float, condition: Callable[[], bool] | None) -> None:
        self._pump_hub()  # output of hub commands the test called directly
        while True:
            if condition is not None and condition():
                return
            when = self._next_time()
            if when is None or when > end:
                self.clock.set(max(self.now, end))
                self._fire_timers()
                return
            self.clock.set(max(self.now, when))
            while self._queue and self._queue[0][0] <= self.now:
                _, _, action = heapq.heappop(self._queue)
                action()
            self._fire_timers()

    def _next_time(self) -> float | None:
        candidates = [self._queue[0][0]] if self._queue else []
        for node in self.nodes:
            hub_deadline = node.hub.next_deadline() if node.alive else None
            if hub_deadline is not None:
                candidates.append(hub_deadline)
        for client in self.clients:
            deadline = client.session.next_deadline()
            if deadline is not None:
                candidates.append(deadline)
        return min(candidates) if candidates else None

    def _fire_timers(self) -> None:
        now = self.now
        for node in self.nodes:
            deadline = node.hub.next_deadline() if node.alive else None
            if deadline is not None and deadline <= now:
                node.hub.handle_timer(now)
                self._pump_node(node)
        for client in self.clients:
            deadline = client.session.next_deadline()
            if deadline is not None and deadline <= now:
                client.session.handle_timer(now)
                self._pump_client(client)

    def _at(self, delay: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, action))

    # ------------------------------------------------------------------ plumbing

    def _chunks(self, data: bytes) -> list[bytes]:
        if not self.chunking or len(data) < 2:
            return [data]
        out = []
        i = 0
        while i < len(data):
            step = 1 + int(self._rng.random() * min(len(data) - i, 1500))
            out.append(data[i:i + step])
            i += step
        return out

    def _pump_client(self, client: SimClient) -> None:
        session = client.session
        for event in session.events_received():
            client.events.append(event)
            client.timeline.append((self.now, event))
            if isinstance(event, OpenTransport):
                self._open_link(client, event.attempt)
            elif isinstance(event, CloseTransport):
                link = client.link
                if link is not None and link.attempt == event.attempt:
                    self._send_c2s(link, b"".join(session.data_to_send()))
                    self._close_link_from_client(link)
        link = client.link
        if link is not None and link.client_open:
            data = b"".join(session.data_to_send())
            if data:
                self._send_c2s(link, data)

    def on_hub_event(self, handler: Callable[[HubEvent], None]) -> None:
        """Run ``handler`` on every hub event as it happens: this is where app logic goes
        (it may call hub commands; their output is sent at once)."""
        self._handlers.append(handler)

    def _pump_hub(self) -> None:
        for node in self.nodes:
            if node.alive:
                self._pump_node(node)

    def _pump_engine(self, node: SimNode) -> None:
        """Hand the node's engine requests to the engine (none on a single node)."""

    def _pump_node(self, node: SimNode) -> None:
        hub = node.hub
        while True:
            self._pump_engine(node)
            for conn_id, chunks, close_after in hub.flush(self.now):
                link = node.links.get(conn_id)
                if link is None:
                    continue
                data = b"".join(chunks)
                if data:
                    self._send_s2c(link, data)
                if close_after:
                    self._close_link_from_server(link)
            events = hub.events_received()
            if not events:
                self._pump_engine(node)
                return
            self.hub_events.extend(events)
            self.hub_event_sources.extend([(node.name, node.incarnation)] * len(events))
            self.event_hub = hub
            for event in events:
                for handler in self._handlers:
                    handler(event)

    def _open_link(self, client: SimClient, attempt: int) -> None:
        link = SimLink(client=client, attempt=attempt)
        client.link = link
        node = self._pick_node(client)
        incarnation = node.incarnation if node is not None else -1

        def established() -> None:
            if (not link.client_open or node is None or not node.alive
                    or node.incarnation != incarnation or client.isolated):
                link.client_open = link.hub_open = False
                client.session.transport_failed(attempt, self.now, "connection refused")
                self._pump_client(client)
                return
            link.hub_open = True
            link.node = node
            link.conn_id = node.hub.open_connection(self.now)
            node.links[link.conn_id] = link
            client.session.transport_opened(attempt, self.now)
            self._pump_client(client)

        self._at(self.latency, established)

    def _consume(self, link: SimLink, data: bytes) -> bytes:
        """Apply the cut budget; returns what gets through."""
        if link.cut_after is None:
            return data
        allowed = data[:link.cut_after]
        link.cut_after -= len(allowed)
        return allowed

    def _send_c2s(self, link: SimLink, data: bytes) -> None:
        if not link.client_open or link.blackholed or not data:
            return
        data = self._consume(link, data)
        node = link.node
        assert node is not None
        hub = node.hub
        for chunk in self._chunks(data):
            link.bytes_c2s += len(chunk)

            def deliver(chunk: bytes = chunk) -> None:
                if not link.hub_open or link.conn_id is None or node.hub is not hub:
                    return
                hub.receive_data(link.conn_id, chunk, self.now)
                self._pump_node(node)
                hub.after_write(self.now)  # as the socket adapters' pump does after a read

            self._at(self.latency, deliver)
        if link.cut_after == 0:
            self._at(self.latency, lambda: self._break(link))

    def _send_s2c(self, link: SimLink, data: bytes) -> None:
        if not link.hub_open or link.blackholed or not data:
            return
        data = self._consume(link, data)
        client = link.client
        bandwidth = client.bandwidth
        for chunk in self._chunks(data):
            link.bytes_s2c += len(chunk)
            delay = self.latency
            if bandwidth is not None:
                start = max(self.now, link.s2c_busy_until)
                link.s2c_busy_until = start + len(chunk) / bandwidth
                delay += link.s2c_busy_until - self.now
                link.s2c_in_flight += len(chunk)

            def deliver(chunk: bytes = chunk) -> None:
                if bandwidth is not None:
                    link.s2c_in_flight -= len(chunk)
                    if link.paused and link.s2c_in_flight <= self.socket_buffer // 4 \
                            and link.hub_open and link.conn_id is not None \
                            and link.node is not None:
                        link.paused = False
                        link.node.hub.resume_writing(link.conn_id)
                        self._pump_node(link.node)
                if not link.client_open:
                    return
                client.session.receive_data(link.attempt, chunk, self.now)
                self._pump_client(client)

            self._at(delay, deliver)
        if bandwidth is not None and not link.paused and link.conn_id is not None \
                and link.s2c_in_flight > self.socket_buffer and link.node is not None:
            link.paused = True
            link.node.hub.pause_writing(link.conn_id)
        if link.cut_after == 0:
            self._at(self.latency, lambda: self._break(link))

    def _close_link_from_client(self, link: SimLink) -> None:
        """The client closed its socket; the FIN reaches the server behind in-flight data."""
        self._close_client_side(link)
        if not link.blackholed:
            self._at(self.latency * 1.01, lambda: self._close_hub_side(link))

    def _close_link_from_server(self, link: SimLink) -> None:
        self._close_hub_side(link)
        if not link.blackholed:
            self._at(self.latency * 1.01, lambda: self._close_client_side(link))

    def _close_hub_side(self, link: SimLink, *, notify: bool = True) -> None:
        if not link.hub_open:
            return
        link.hub_open = False
        node = link.node
        if link.conn_id is not None and node is not None:
            node.links.pop(link.conn_id, None)
            if notify and node.alive:
                node.hub.connection_lost(link.conn_id, self.now)
                self._pump_node(node)

    def _close_client_side(self, link: SimLink) -> None:
        if not link.client_open:
            return
        link.client_open = False
        link.client.session.transport_closed(link.attempt, self.now)
        self._pump_client(link.client)

    def _break(self, link: SimLink, *, notify_hub: bool = True) -> None:
        """The connection is cut: both ends see it close (a reset), now."""
        self._close_hub_side(link, notify=notify_hub)
        self._close_client_side(link)


def fast_reconnect(max_attempts: int | None = None) -> ReconnectPolicy:
    """A reconnect policy suited to simulations (100 ms initial, 5 s cap)."""
    return ReconnectPolicy(initial_delay=0.1, max_delay=5.0, max_attempts=max_attempts)


def client_config(**overrides: Any) -> ClientConfig:
    """A :class:`ClientConfig` for simulations: any URL, unlimited fast reconnects."""
    base = ClientConfig(url="ws://sim.invalid/", reconnect=fast_reconnect())
    return replace(base, **overrides)


from .cluster import ClusterSimulation, SimEngine  # noqa: E402  (it builds on Simulation)
