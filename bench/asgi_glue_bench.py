"""What SigmaASGIApp itself adds per echoed message, without an ASGI server: CPU time of

* ``core``: the hub in message mode alone (``receive_message``, the echo through the sender's
  inbox, ``flush``), the way the adapter drives it;
* ``app``: the same echo through ``SigmaASGIApp`` driven by a stand-in ASGI server whose
  ``receive()`` hands over the next message (with one checkpoint, as a real server's
  ``receive`` suspends) and whose ``send()`` only counts;

on asyncio and on trio; and ``bare``: an ASGI app that sends each message back as it came,
under the same stand-in (the floor: the stand-in's suspending ``receive()`` and the dicts any
ASGI app pays). ``app - core - bare`` is the adapter's glue (``_after_core``, the writer
bookkeeping, the listener call); the rest of an ASGI server's cost per message is its own
framing and I/O (docs/benchmarks.md, "ASGI servers").

    .venv/bin/python bench/asgi_glue_bench.py [--messages 20000]
    .venv/bin/python bench/asgi_glue_bench.py --instructions [--messages 1000,3000]

``--instructions`` counts instead of timing (load-independent): each variant runs under
``valgrind --tool=callgrind`` twice, with the two message counts, and the difference in
instructions divided by the difference in messages is printed (start-up cancels out).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
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


async def bare(n: int) -> float:
    """The floor: an ASGI app that sends each message back as it came (no protocol), under the
    same stand-in server."""
    messages: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    messages += [{"type": "websocket.receive", "bytes": e} for e in envelopes(n)]
    position = 0

    async def receive() -> dict[str, Any]:
        nonlocal position
        await anyio.lowlevel.checkpoint()
        if position == len(messages):
            return {"type": "websocket.disconnect", "code": 1000}
        position += 1
        return messages[position - 1]

    async def send(message: Any) -> None:
        pass

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "bytes": message["bytes"]})

    started = time.process_time()
    await echo({"type": "websocket"}, receive, send)
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


VARIANTS = ("core", "bare-asyncio", "asyncio", "bare-trio", "trio")
LABELS = {"core": "core, message mode", "bare-asyncio": "bare ASGI echo on asyncio",
          "bare-trio": "bare ASGI echo on trio", "asyncio": "SigmaASGIApp on asyncio",
          "trio": "SigmaASGIApp on trio"}


def run_once(variant: str, n: int) -> float:
    if variant == "core":
        return core(n)
    if variant.startswith("bare-"):
        return anyio.run(bare, n, backend=variant[5:])
    return anyio.run(app, n, backend=variant)


def instructions(variant: str, n: int) -> int:
    """Instructions callgrind counts for one run of ``variant`` with ``n`` messages."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, __file__, "--run", variant, "--messages", str(n)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as counts:
            for line in counts:
                found = re.match(r"(?:summary|totals): (\d+)", line)
                if found:
                    return int(found.group(1))
    raise RuntimeError("callgrind wrote no totals")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", default="")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--run", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_once(args.run, int(args.messages))
        return
    if args.instructions:
        small, large = (int(x) for x in (args.messages or "1000,3000").split(","))
        print(f"echoed 1 KiB messages, instructions per message (callgrind, {small} vs {large})")
        per = {}
        for variant in VARIANTS:
            per[variant] = (instructions(variant, large) - instructions(variant, small)) / (
                large - small)
            print(f"  {LABELS[variant]:26} {per[variant]:9,.0f}")
        for backend in ("asyncio", "trio"):
            glue = per[backend] - per["core"] - per["bare-" + backend]
            print(f"  glue on {backend:7} (app - core - bare) {glue:9,.0f}")
        return
    n = int(args.messages or 20_000)
    print(f"{n} echoed 1 KiB messages, µs of CPU per message (best of 3)")
    for variant in VARIANTS:
        cost = min(run_once(variant, n) for _ in range(3))
        print(f"  {LABELS[variant]:26} {cost * 1e6:6.2f}")


if __name__ == "__main__":
    main()
