"""The chat server: the built web app and the SigmaSockets WebSocket on one port.

    python -m examples.chat [--host H] [--port P] [--max-connections N]
                            [--heartbeat-interval S] [--history-size N] [--rooms a,b]
                            [--session-timeout S] [--static-dir DIR]

Every flag has a ``SIGMASOCKETS_*`` environment variable (flags win); see README.md. Prints
``SigmaSockets chat: http://HOST:PORT/`` once listening; SIGTERM or SIGINT stops it gracefully
(clients get Goodbye with a reconnect hint, then close 1001).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sigma_asyncio import ServerOptions, SigmaSocketServer, run
from sigma_core.backplane import HistoryLimits

from .app import ChatApp
from .static import StaticFiles

__all__ = ["ChatConfig", "build_server", "main", "parse_config"]

HERE = Path(__file__).resolve().parent
DEFAULT_STATIC = HERE / "web" / "dist"
ENV_PREFIX = "SIGMASOCKETS_"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChatConfig:
    host: str = "127.0.0.1"
    port: int = 3000
    max_connections: int = 10_000
    heartbeat_interval: float = 25.0
    history_size: int = 50
    rooms: tuple[str, ...] = ("general", "random", "help")
    session_timeout: float = 120.0
    static_dir: Path = DEFAULT_STATIC
    #: Redis/Valkey URL of a cluster engine shared with other chat nodes (sigma_redis); "" runs
    #: one process on the in-memory engine.
    redis_url: str = ""


def _duration(text: str) -> float:
    """Seconds: ``25``, ``25s``, ``2.5``, or milliseconds as ``25000ms`` (the original's unit)."""
    text = text.strip().lower()
    value = float(text[:-2]) / 1000 if text.endswith("ms") else float(text.removesuffix("s"))
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}: {text!r}")
        return value
    return parse


def _rooms(text: str) -> tuple[str, ...]:
    rooms = tuple(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))
    if not rooms:
        raise argparse.ArgumentTypeError("at least one room")
    return rooms


def parse_config(argv: Sequence[str] | None = None,
                 env: Mapping[str, str] | None = None) -> ChatConfig:
    """Flags, then ``SIGMASOCKETS_*`` environment variables, then defaults."""
    env = os.environ if env is None else env
    d = ChatConfig()
    parser = argparse.ArgumentParser(
        prog="python -m examples.chat",
        description="SigmaSockets chat demo: the web app and its WebSocket on one port.",
        epilog="Each option can also be set by the environment variable shown in brackets.")
    specs: list[tuple[str, Callable[[str], Any], object, str]] = [
        ("host", str, d.host, "address to bind (0.0.0.0: every interface)"),
        ("port", _count(0), d.port, "port for the page and the WebSocket (0: a free one)"),
        ("max-connections", _count(1), d.max_connections, "open connections accepted"),
        ("heartbeat-interval", _duration, d.heartbeat_interval,
         "seconds between server pings (or e.g. 25000ms)"),
        ("history-size", _count(0), d.history_size,
         "messages per room sent to a newcomer"),
        ("rooms", _rooms, ",".join(d.rooms), "comma-separated rooms that always exist"),
        ("session-timeout", _duration, d.session_timeout,
         "seconds a disconnected user's session waits for them to come back"),
        ("static-dir", Path, d.static_dir, "the built web app (npm run build)"),
        ("redis-url", str, d.redis_url,
         "Redis/Valkey URL of the cluster engine shared by several nodes ('': one process)"),
    ]
    for name, kind, builtin, text in specs:
        var = ENV_PREFIX + name.upper().replace("-", "_")
        default = builtin
        if var in env:
            try:
                default = kind(env[var])
            except (ValueError, argparse.ArgumentTypeError) as exc:
                parser.error(f"{var}={env[var]!r}: {exc}")
        parser.add_argument(f"--{name}", type=kind, default=default,
                            help=f"{text} [{var}] (default: %(default)s)")
    args = parser.parse_args(argv)
    rooms = args.rooms if isinstance(args.rooms, tuple) else _rooms(args.rooms)
    return ChatConfig(host=args.host, port=args.port, max_connections=args.max_connections,
                      heartbeat_interval=args.heartbeat_interval,
                      history_size=args.history_size, rooms=rooms,
                      session_timeout=args.session_timeout, static_dir=args.static_dir,
                      redis_url=args.redis_url)


def build_server(config: ChatConfig, app: ChatApp) -> SigmaSocketServer:
    """The SigmaSocketServer for ``config`` with ``app`` attached."""
    engine = None
    if config.redis_url:
        from sigma_redis import RedisEngine, RedisEngineConfig

        engine = RedisEngine(RedisEngineConfig(url=config.redis_url))
    options = ServerOptions(
        engine=engine,
        host=config.host,
        port=config.port,
        max_connections=config.max_connections,
        heartbeat_interval=config.heartbeat_interval,
        heartbeat_timeout=max(60.0, 2.4 * config.heartbeat_interval),
        session_timeout=config.session_timeout,
        # Replay history per topic: enough for a session that comes back before it expires.
        history=HistoryLimits(max_count=1000, max_bytes=4 << 20,
                              max_age=max(300.0, config.session_timeout)),
        max_message_size=64 * 1024,
        max_topics_per_session=50,
        authenticate=app.authenticate,
        authorize_subscribe=app.authorize_subscribe,
        http_handler=StaticFiles(config.static_dir),
    )
    server = SigmaSocketServer(options)
    app.attach(server)
    return server


def _url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


async def serve(config: ChatConfig) -> None:
    app = ChatApp(history_size=config.history_size, rooms=config.rooms)
    server = build_server(config, app)
    if not (config.static_dir / "index.html").is_file():
        print(f"warning: {config.static_dir}/index.html is missing: build the web app "
              f"(bash scripts/chat.sh does)", file=sys.stderr, flush=True)
    await server.start()
    url = _url(config.host, server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"SigmaSockets chat: {url}", flush=True)
    if config.host in ("", "0.0.0.0", "::"):
        print(f"  (listening on every interface, port {server.port})", flush=True)
    await stop.wait()
    print("stopping: telling clients to come back later...", flush=True)
    await server.stop()
    print("stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    try:
        run(serve(config))
    except OSError as exc:  # port in use, bad address
        print(f"error: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0
