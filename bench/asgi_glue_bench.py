"""What SigmaASGIApp itself adds per echoed message, without an ASGI server: CPU time of

* ``core``: the hub in message mode alone (``receive_message``, the echo through the sender's
  inbox, ``flush``), the way the adapter drives it;
* ``app``: the same echo through ``SigmaASGIApp`` driven by a stand-in ASGI server whose
  ``receive()`` hands over the next message (with one checkpoint, as a real server's
  ``receive`` suspends) and whose ``send()`` only counts;

on asyncio and on trio. The difference is the adapter's glue (the message dicts, the writer
task's wake-ups, ``_after_core``); the rest of an ASGI server's cost per message is its own
framing and I/O (docs/benchmarks.md, "ASGI servers").

    .venv/bin/python bench/asgi_glue_bench.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import anyio.lowlevel

from sigma_asgi import ClientSession, SigmaASGIApp
from sigma_core import codec
from sigma_core.entropy import SeededEntropy
from sigma_core.hub import ClientMessage, Hub, HubConfig
from sigma_core.messages import Hello
from sigma_core.websocket import HandshakeRequest

PAYLOAD = bytes(range(256)) * 4
REQUEST = HandshakeRequest(path="/", headers=(), subprotocols=("sigma.v1",), host="bench")


def envelopes(n: int) -> list[bytes]:
    return [codec.encode_data(seq=i + 1, payload=PAYLOAD, topic="") for i in range(n)]


def core(n: int) -> float:
    hub = Hub(HubConfig(), entropy=SeededEntropy(1), now=0.0)
    conn_id = hub.open_message_connection(REQUEST, 0.0)
    hub.receive_message(conn_id, codec.encode(Hello()), 0.0)
    hub.flush(0.0)
    hub.events_received()
    data = envelopes(n)
    started = time.process_time()
    for envelope in data:
        hub.receive_message(conn_id, envelope, 0.0)
        for event in hub.events_received():
            if type(event) is ClientMessage:
                hub.send_to(event.session.id, event.payload, 0.0)
        hub.flush(0.0)
    return (time.process_time() - started) / n


async def app(n: int) -> float:
    sigma = SigmaASGIApp()
    echoed = 0
    done = anyio.Event()

    def on_message(client: ClientSession, payload: bytes, topic: str) -> None:
        sigma.send_to_client(client, payload)

    sigma.on("message", on_message)
    messages: list[dict[str, Any]] = [{"type": "websocket.connect"},
                                      {"type": "websocket.receive",
                                       "bytes": codec.encode(Hello())}]
    messages += [{"type": "websocket.receive", "bytes": e} for e in envelopes(n)]
    position = 0

    async def receive() -> dict[str, Any]:
        nonlocal position
        await anyio.lowlevel.checkpoint()
        if position == len(messages):
            await done.wait()
            return {"type": "websocket.disconnect", "code": 1000}
        position += 1
        return messages[position - 1]

    async def send(message: Any) -> None:
        nonlocal echoed
        if message["type"] == "websocket.send":
            echoed += 1
            if echoed == n + 1:  # the Welcome, then n echoes (acks ride along, not counted)
                done.set()

    scope = {"type": "websocket", "path": "/", "headers": [], "subprotocols": ["sigma.v1"]}
    started = time.process_time()
    async with sigma:
        await sigma(scope, receive, send)
    return (time.process_time() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    n = parser.parse_args().messages
    print(f"{n} echoed 1 KiB messages, µs of CPU per message (best of 3)")
    print(f"  core, message mode       {min(core(n) for _ in range(3)) * 1e6:6.2f}")
    for backend in ("asyncio", "trio"):
        cost = min(anyio.run(app, n, backend=backend) for _ in range(3))
        print(f"  SigmaASGIApp on {backend:7}  {cost * 1e6:6.2f}")


if __name__ == "__main__":
    main()
