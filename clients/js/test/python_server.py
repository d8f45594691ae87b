"""A SigmaSockets server (sigma_asyncio) for the JavaScript client's interop tests.

    python test/python_server.py [--port 0] [--session-timeout S] [--shutdown-reconnect-after S]

Binds 127.0.0.1, prints ``PORT <n>`` on stdout once it accepts (nothing else is ever printed
there), and runs until killed. Every client message is answered according to its topic hint:

* ``""`` (no topic) or ``"echo"``: sent back to the sender's ``$inbox`` (``send_to_client``);
* ``"publish:<room>"``: published to ``<room>``;
* ``"broadcast"``: sent to ``$all``;
* ``"stats"``: the sender's ``$inbox`` gets JSON ``{"received": [...]}``: every payload (UTF-8)
  this session delivered to the server app, in order, so the test can check exactly-once;
* ``"inbox-held"``: the sender's ``$inbox`` gets JSON ``{"held": n}``: how many of its inbox
  messages the server still keeps for replay (before this reply; the client's inbox Acks let
  them go, docs/protocol.md §7);
* ``"subscribe:<room>"``: the server subscribes the sender to ``<room>`` (server-initiated);
* ``"drop"``: the sender's socket is aborted (no close frame, no Goodbye): a network cut. The
  session stays resumable;
* ``"kick"``: ``disconnect_client`` (Goodbye NORMAL + close 1000; the session ends);
* ``"restart:<ms>"``: graceful ``stop()`` (Goodbye SHUTTING_DOWN with the reconnect hint +
  close 1001), then ``start()`` again on the same port after ``<ms>``; the hub, so every
  session and all history, survives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import defaultdict

from sigma_asyncio import SigmaSocketServer
from sigma_core.hub import Session


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--session-timeout", type=float, default=300.0)
    parser.add_argument("--shutdown-reconnect-after", type=float, default=0.2)
    args = parser.parse_args()

    server = SigmaSocketServer(host="127.0.0.1", port=args.port,
                               session_timeout=args.session_timeout,
                               shutdown_reconnect_after=args.shutdown_reconnect_after,
                               shutdown_timeout=2.0,
                               presence_notifications=True)
    received: dict[str, list[str]] = defaultdict(list)
    tasks: set[asyncio.Task[None]] = set()

    async def restart(delay_ms: int) -> None:
        await server.stop()
        await asyncio.sleep(delay_ms / 1000)
        await server.start()

    def on_message(client: Session, data: bytes, topic: str) -> None:
        payload = bytes(data)
        received[client.id].append(payload.decode("utf-8", "replace"))
        if topic in ("", "echo"):
            server.send_to_client(client, payload)
        elif topic.startswith("publish:"):
            server.publish(topic.removeprefix("publish:"), payload)
        elif topic == "broadcast":
            server.broadcast(payload)
        elif topic == "stats":
            server.send_to_client(client, json.dumps({"received": received[client.id]}).encode())
        elif topic == "inbox-held":
            # No public API counts a session's inbox history: reach into the hub's engine.
            hub = server._hub
            assert hub is not None
            stream = hub._engine._streams.get("$inbox:" + client.id)
            held = len(stream.entries) if stream is not None and stream.entries else 0
            server.send_to_client(client, json.dumps({"held": held}).encode())
        elif topic.startswith("subscribe:"):
            server.subscribe(client, topic.removeprefix("subscribe:"))
        elif topic == "drop":
            # TODO: no public API aborts one client's connection while keeping its session
            # (disconnect_client ends the session); reach into the adapter's peers
            # (conn_id -> transport).
            conn_id = client.conn_id
            transport = server._peers.get(conn_id) if conn_id is not None else None
            if transport is not None:
                transport.abort()
        elif topic == "kick":
            server.disconnect_client(client, "kicked")
        elif topic.startswith("restart:"):
            task = asyncio.get_running_loop().create_task(
                restart(int(topic.removeprefix("restart:"))))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server.on("message", on_message)
    await server.start()
    sys.stdout.write(f"PORT {server.port}\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
