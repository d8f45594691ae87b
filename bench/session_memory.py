"""What one server-side session keeps, object by object: idle, and after one echo.

    .venv/bin/python bench/session_memory.py [--clients 50]

Builds a hub with ``--clients`` client cores wired to it in memory (``bench/core_bench.py``'s
``Bench``), then walks the objects reachable from one session's hub-side records (its
connection record and its ``Session``), not counting what every session shares (the hub, its
config, types, modules, interned strings, small ints). Prints the total and the largest kinds,
idle and after one 1 KiB echo through the session's inbox (before and after the client
acknowledges it, docs/protocol.md §7). ``sys.getsizeof`` per object: what
the objects take, without the allocator's rounding or the kernel's socket buffers (which
``bench/run.py`` (d)'s RSS includes).
"""

from __future__ import annotations

import argparse
import gc
import sys
import types
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_bench import PAYLOAD, Bench

from sigma_core.hub import ClientMessage


def reachable(roots: list[object], shared: set[int]) -> dict[int, object]:
    seen: dict[int, object] = {}
    stack = list(roots)
    while stack:
        obj = stack.pop()
        key = id(obj)
        if key in seen or key in shared:
            continue
        if isinstance(obj, type | types.ModuleType | types.FunctionType
                      | types.BuiltinFunctionType):
            continue
        seen[key] = obj
        stack.extend(gc.get_referents(obj))
    return seen


def shared_objects(bench: Bench, skip: set[int]) -> set[int]:
    """Everything reachable from the hub except through the sessions' own records."""
    hub = bench.hub
    shared: set[int] = set(skip)
    stack: list[object] = [hub]
    while stack:
        obj = stack.pop()
        key = id(obj)
        if key in shared:
            continue
        shared.add(key)
        if isinstance(obj, type | types.ModuleType):
            continue
        stack.extend(gc.get_referents(obj))
    return shared


def report(title: str, objects: dict[int, object]) -> int:
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for obj in objects.values():
        name = type(obj).__qualname__
        sizes[name] += sys.getsizeof(obj)
        counts[name] += 1
    total = sum(sizes.values())
    print(f"\n{title}: {total:,} bytes in {len(objects)} objects")
    for name, size in sizes.most_common(14):
        print(f"  {size:7,}  {counts[name]:4}  {name}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    bench = Bench(args.clients)
    hub = bench.hub
    target = bench.conn_of[0]
    rec = hub._conns[target]
    session = rec.session
    assert session is not None

    engine = hub._engine
    streams, holding = engine._streams, engine._holding
    inbox = "$inbox:" + session.id  # the session's inbox stream (hub._INBOX_KEY)

    # Shared: everything the hub reaches when this session's records (its connection record,
    # its Session, its inbox stream in the backplane) are left out.
    def measure(title: str) -> int:
        own = {id(hub._conns), id(hub._sessions), id(streams), id(holding)}
        stream = streams.pop(inbox, None)
        held = holding.pop(inbox, None)
        hidden = [hub._conns.pop(target), hub._sessions.pop(session.id)]
        try:
            shared = shared_objects(bench, set())
        finally:
            hub._conns[target], hub._sessions[session.id] = hidden  # type: ignore[assignment]
            if stream is not None:
                streams[inbox] = stream
            if held is not None:
                holding[inbox] = held
        roots: list[object] = [rec, session] + ([inbox, stream] if stream is not None else [])
        shared -= {id(o) for o in roots}
        shared |= own
        return report(title, reachable(roots, shared))

    idle = measure("idle session (after Hello/Welcome)")

    def echo(event: object) -> None:
        if isinstance(event, ClientMessage):
            hub.send_to(event.session.id, event.payload, bench.now)

    bench.clients[0].send(PAYLOAD, bench.now)
    bench.pump_client(0)
    bench.pump_hub(echo)
    unacked = measure("after one 1 KiB echo, before the client's inbox Ack")
    # The client acknowledges its $inbox inbox_ack_delay (1 s) later (docs/protocol.md §7).
    client = bench.clients[0]
    deadline = client.next_deadline()
    assert deadline is not None
    bench.now = deadline
    client.handle_timer(bench.now)
    bench.pump_client(0)
    bench.pump_hub(echo)
    after = measure("after one 1 KiB echo, acknowledged")
    print(f"\nidle {idle / 1024:.2f} KiB, after one echo {after / 1024:.2f} KiB "
          f"(+{(after - idle) / 1024:.2f}; {unacked / 1024:.2f} KiB until the client's Ack)")


if __name__ == "__main__":
    main()
