"""A simulated cluster: N hubs sharing one simulated engine, on the virtual clock.

:class:`ClusterSimulation` is a :class:`~sigma_core.testing.Simulation` with several nodes. Each
node's hub runs with an external engine (``ExternalEngineConfig``): its requests travel to a
shared :class:`SimEngine` (a :class:`~sigma_core.backplane.MemoryEngine` behind a network) and
the results travel back, each way after ``engine_latency``; messages appended to a topic reach
the other nodes receiving it after ``engine_latency`` plus a random share of ``jitter`` (so
nodes see them at different times, and with ``reorder`` a node may see one topic's messages out
of order). A load balancer sends each new connection to a random live, accepting node.

Faults, as commands:

* :meth:`ClusterSimulation.crash_node` — the process dies: its links break, its memory is gone
  (a later :meth:`ClusterSimulation.restart_node` starts an empty hub);
* :meth:`ClusterSimulation.drain_node` — a graceful stop: clients get Goodbye(SHUTTING_DOWN) and
  reconnect elsewhere; the node takes no new connections;
* :meth:`ClusterSimulation.engine_down` / :meth:`ClusterSimulation.engine_up` — an engine
  outage: requests fail with "engine unavailable", deliveries between nodes are lost, and the
  nodes are told (``engine_status``);
* :meth:`ClusterSimulation.drop_cross_node` — the next N deliveries between nodes are lost (what
  the continuity and periodic position checks must recover).
"""

from __future__ import annotations

from collections.abc import Callable

from ..backplane import HistoryLimits, MemoryEngine
from ..engine import (
    EngineFailed,
    EngineRequest,
    EngineResult,
    ExternalEngineConfig,
    HistoryEntry,
    Receive,
    StopReceiving,
)
from ..entropy import SeededEntropy
from ..hub import Hub, HubConfig
from . import SimClient, SimNode, Simulation

__all__ = ["ClusterSimulation", "SimEngine"]


class SimEngine:
    """The shared engine of a simulated cluster: a :class:`MemoryEngine` plus who receives what.

    Its clock is the simulation's virtual time plus the hubs' ``wall_clock_offset``."""

    def __init__(self, limits: HistoryLimits | None = None, *, seed: int = 0) -> None:
        self.store = MemoryEngine(SeededEntropy(seed * 31 + 5), limits)
        #: node name -> engine topics it receives.
        self.receivers: dict[str, set[str]] = {}
        self.up = True
        #: Requests executed, by type name (for assertions on traffic).
        self.executed: dict[str, int] = {}

    def execute(self, node: str, request: EngineRequest, now: float) -> EngineResult:
        if not self.up:
            return EngineFailed(request_id=request.request_id, reason="engine unavailable")
        name = type(request).__name__
        self.executed[name] = self.executed.get(name, 0) + 1
        if isinstance(request, Receive):
            self.receivers.setdefault(node, set()).add(request.topic)
        elif isinstance(request, StopReceiving):
            self.receivers.get(node, set()).discard(request.topic)
        return self.store.execute(request, now)

    def forget_node(self, node: str) -> None:
        """A crashed node's subscriptions to topics end with its connections to the engine."""
        self.receivers.pop(node, None)


class ClusterSimulation(Simulation):
    """``nodes`` hubs sharing a :class:`SimEngine`, clients behind a load balancer."""

    def __init__(self, nodes: int = 2, hub_config: HubConfig | None = None, *, seed: int = 0,
                 latency: float = 0.005, engine_latency: float = 0.001, jitter: float = 0.004,
                 reorder: bool = False, chunking: bool = True, now: float = 0.0,
                 engine_config: Callable[[str], ExternalEngineConfig] | None = None) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.engine_latency = engine_latency
        self.jitter = jitter
        self.reorder = reorder
        config = hub_config or HubConfig()
        self.engine = SimEngine(config.history, seed=seed)
        self._engine_config = engine_config or (lambda name: ExternalEngineConfig(node_id=name))
        self._drops = 0
        #: Deliveries between nodes lost (to drop_cross_node or an outage).
        self.dropped_cross_node = 0
        self._offset = config.connection.wall_clock_offset
        self._last_delivery: dict[tuple[str, str], float] = {}
        super().__init__(config, seed=seed, latency=latency, chunking=chunking, now=now)
        for i in range(1, nodes):
            self.nodes.append(SimNode(f"node{i}", self._new_hub(i, now)))
        self.engine.store.on_append = self._fan_out
        self._balance_rng = SeededEntropy(seed * 13 + 3)

    # ------------------------------------------------------------------ nodes

    def _new_hub(self, index: int, now: float) -> Hub:
        name = f"node{index}"
        return Hub(self.hub_config, entropy=SeededEntropy(self._seed * 1000 + 1 + self._restarts
                                                          + 7 * index),
                   now=now, engine=self._engine_config(name))

    def node(self, name_or_index: str | int) -> SimNode:
        if isinstance(name_or_index, int):
            return self.nodes[name_or_index]
        return next(n for n in self.nodes if n.name == name_or_index)

    def node_of(self, client: SimClient) -> SimNode | None:
        """The node the client's current link reached (None while not connected)."""
        link = client.link
        return link.node if link is not None and link.hub_open else None

    def _pick_node(self, client: SimClient) -> SimNode | None:
        pinned = client.pinned
        if pinned is not None:
            node = self.node(pinned)
            return node if node.alive and node.accepting else None
        choices = [n for n in self.nodes if n.alive and n.accepting]
        if not choices:
            return None
        return choices[int(self._balance_rng.random() * len(choices))]

    def pin(self, client: SimClient, node: str | int | None) -> None:
        """Make the load balancer send ``client``'s next connections to ``node`` (None: any)."""
        client.pinned = None if node is None else self.node(node).name

    def crash_node(self, node: str | int) -> None:
        """The node's process dies: links break (clients see a reset), memory is gone."""
        target = self.node(node)
        self.engine.forget_node(target.name)
        self._crash(target)

    def restart_node(self, node: str | int) -> None:
        """Start a crashed node again, with an empty hub."""
        self._revive(self.node(node))

    def drain_node(self, node: str | int, *, reconnect_after_ms: int = 100) -> None:
        """Graceful stop: every client gets Goodbye(SHUTTING_DOWN) and comes back elsewhere."""
        target = self.node(node)
        target.accepting = False
        target.hub.shutdown(self.now, reconnect_after_ms=reconnect_after_ms)
        self._pump_node(target)

    # ------------------------------------------------------------------ engine faults

    def engine_down(self) -> None:
        self.engine.up = False
        for node in self.nodes:
            if node.alive:
                node.hub.engine_status(False, "engine unavailable", self.now)
                self._pump_node(node)

    def engine_up(self) -> None:
        self.engine.up = True
        for node in self.nodes:
            if node.alive:
                node.hub.engine_status(True, "", self.now)
                self._pump_node(node)

    def drop_cross_node(self, count: int = 1) -> None:
        """Lose the next ``count`` deliveries of appended messages to nodes."""
        self._drops += count

    # ------------------------------------------------------------------ plumbing

    def _pump_engine(self, node: SimNode) -> None:
        if not node.alive:
            return
        requests = node.hub.engine_requests()
        incarnation = node.incarnation
        for request in requests:
            def arrive(request: EngineRequest = request) -> None:
                if not node.alive or node.incarnation != incarnation:
                    return  # the connection to the engine died with the process
                result = self.engine.execute(node.name, request, self.now + self._offset)

                def answer() -> None:
                    if node.alive and node.incarnation == incarnation:
                        node.hub.engine_result(result, self.now)
                        self._pump_node(node)

                self._at(self.engine_latency, answer)

            self._at(self.engine_latency, arrive)

    def _fan_out(self, topic: str, entry: HistoryEntry) -> None:
        for node in self.nodes:
            if not node.alive or topic not in self.engine.receivers.get(node.name, ()):
                continue
            if self._drops > 0:
                self._drops -= 1
                self.dropped_cross_node += 1
                continue
            incarnation = node.incarnation
            delay = self.engine_latency + self.jitter * self._rng.random()
            if not self.reorder:
                # One topic's messages reach a node in order (a pub/sub connection keeps it).
                key = (node.name, topic)
                last = self._last_delivery.get(key, 0.0)
                delay = max(delay, last - self.now + 1e-9)
                self._last_delivery[key] = self.now + delay

            def deliver(node: SimNode = node, incarnation: int = incarnation) -> None:
                if not node.alive or node.incarnation != incarnation:
                    return
                if not self.engine.up:
                    self.dropped_cross_node += 1
                    return
                node.hub.engine_message(topic, entry, self.now)
                self._pump_node(node)

            self._at(delay, deliver)

