"""A node drains with its goodbyes spread over a window, and its clients land on another node
(both adapters, real sockets). A relay in front of the nodes plays the load balancer: once the
drained node is no longer ready it sends new connections to the other node.

Resuming the *same* session on the other node needs a shared cluster engine (the Redis engine
of issue 15); until then the clients get a fresh session there (``session_reset``), which this
test expects. The nginx test (tests/test_deploy_nginx.py) runs the same through nginx.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest
from adapters_support import BACKENDS, Host, Recorder, make_client, make_server, proxy_to

from sigma_core.client import ConnectionStatus

pytestmark = pytest.mark.anyio

CLIENTS = 12
WINDOW = 1.5
TIMEOUT = 8.0


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


async def test_drain_spreads_goodbyes_and_clients_move_to_the_other_node(
        anyio_backend: str) -> None:
    node_a = make_server(anyio_backend, shutdown_spread=WINDOW, shutdown_timeout=TIMEOUT,
                         shutdown_reconnect_after=0.05)
    node_b = make_server(anyio_backend)
    goodbyes: list[float] = []
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg, AsyncExitStack() as stack:
            await Host(node_a, tg).start()
            await Host(node_b, tg).start()
            proxy = await stack.enter_async_context(proxy_to(node_a.port))
            clients: list[Any] = []
            for _ in range(CLIENTS):
                client = make_client(anyio_backend, proxy.url)
                client.on("disconnection",
                          lambda code, reason: goodbyes.append(anyio.current_time()))
                await stack.enter_async_context(client)
                clients.append(client)
            resets = [Recorder(c, "session_reset") for c in clients]
            assert len(node_a.get_connected_clients()) == CLIENTS
            # The load balancer sees /readyz fail and routes new connections to node B.
            proxy.target_port = node_b.port
            started = anyio.current_time()
            await node_a.stop()
            took = anyio.current_time() - started
            # Every client reconnects on node B.
            while len(node_b.get_connected_clients()) < CLIENTS:
                await anyio.sleep(0.02)
            for r in resets:
                await r.wait("session_reset")
            assert all(c.get_status() is ConnectionStatus.CONNECTED for c in clients)
            await node_b.stop()
            tg.cancel_scope.cancel()
    assert len(goodbyes) >= CLIENTS
    first = goodbyes[:CLIENTS]
    # Spread: one goodbye every WINDOW / CLIENTS seconds, not all at once...
    assert first[-1] - first[0] >= WINDOW * (CLIENTS - 1) / CLIENTS * 0.8
    per_half_window = max(sum(1 for t in first if t0 <= t < t0 + WINDOW / 2) for t0 in first)
    assert per_half_window <= CLIENTS // 2 + 1
    # ...and the node is gone as soon as its clients are, not at its timeout.
    assert WINDOW * 0.8 <= took < TIMEOUT - 2
