"""The chat server: the built web app and the SigmaSockets WebSocket on one port.

    python -m examples.chat [--host H] [--port P] [--max-connections N]
                            [--heartbeat-interval S] [--history-size N] [--rooms a,b]
                            [--session-timeout S] [--static-dir DIR] [--max-rooms N]
                            [--rooms-per-user N] [--room-create-interval S]
                            [--room-expiry S] [--sync-interval S] [--typing-interval S]
                            [--rooms-update-interval S]
                            [--metrics on|off] [--dashboard on|off] [--dashboard-token T]
                            [--ops-port P] [--node-name N] [--drain-window S]
                            [--drain-timeout S] [--ready-delay S]

Every flag has a ``SIGMASOCKETS_*`` environment variable (flags win); see README.md and
docs/operations.md. Prints ``SigmaSockets chat: http://HOST:PORT/`` once listening. Operations
(sigma_ops): ``/metrics``, ``/livez``, ``/readyz`` and the live ``/dashboard`` on the same port
(or ``/metrics`` and the probes on ``--ops-port``). SIGTERM or SIGINT: ``/readyz`` turns 503,
``--ready-delay`` seconds later the drain starts (no new clients; every client gets Goodbye with
a reconnect hint and close 1001, spread over ``--drain-window`` seconds), and the process exits
when the clients are gone or ``--drain-timeout`` passed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sigma_asyncio import ServerOptions, SigmaSocketServer, run
from sigma_core.backplane import HistoryLimits
from sigma_core.engine import ExternalEngineConfig
from sigma_core.proxies import TrustedProxies
from sigma_core.serializers import JSON
from sigma_ops import Ops

from .app import ChatApp, ChatLimits
from .auth import ChatJwt, login_handler, parse_jwt_env
from .static import StaticFiles

__all__ = ["ChatConfig", "build_server", "main", "parse_config", "server_options"]

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
    #: What one client may cost (room limits, sync and typing rates): see ChatLimits.
    limits: ChatLimits = dataclasses.field(default_factory=ChatLimits)
    #: JWT mode (``SIGMASOCKETS_JWT_*``, see auth.py); None: usernames, no tokens.
    jwt: ChatJwt | None = None
    # operations (sigma_ops, docs/operations.md)
    metrics: bool = True
    dashboard: bool = True
    dashboard_token: str = ""
    #: None: /metrics and the probes on the chat's own port.
    ops_port: int | None = None
    node_name: str = ""
    drain_window: float = 0.0
    drain_timeout: float = 10.0
    ready_delay: float = 0.0
    #: Redis/Valkey URL of a cluster engine shared with other chat nodes (sigma_redis); "" runs
    #: one process on the in-memory engine.
    redis_url: str = ""
    #: Reverse proxies whose X-Forwarded-For names the client (ServerOptions.trusted_proxies).
    trusted_proxies: tuple[str, ...] = ()


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


def _seconds(text: str) -> float:
    """Like a duration, but 0 is allowed."""
    text = text.strip().lower()
    value = float(text[:-2]) / 1000 if text.endswith("ms") else float(text.removesuffix("s"))
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _redis_url(text: str) -> str:
    """A cluster engine URL ('' for none), checked now: a malformed one is a usage error."""
    text = text.strip()
    if text:
        try:  # the extra, only when a URL is given
            from sigma_redis._url import parse_target
        except ImportError as exc:
            raise argparse.ArgumentTypeError(_missing_extra("redis", exc)) from None
        try:
            parse_target(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _missing_extra(extra: str, exc: ImportError) -> str:
    """What to say when a mode needs an extra the venv lacks (``bash scripts/chat.sh``
    installs the ``chat`` extra only)."""
    return (f"needs the {extra} extra ({exc}): .venv/bin/pip install -e '.[chat,{extra}]', "
            f"or pip install 'sigmasockets[{extra}]'")


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be on or off: {text!r}")


def _ops_port(text: str) -> int | None:
    if text.strip() in ("", "same"):
        return None
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port (0..65535) or 'same': {text!r}")
    return value


def _rooms(text: str) -> tuple[str, ...]:
    rooms = tuple(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))
    if not rooms:
        raise argparse.ArgumentTypeError("at least one room")
    return rooms


def _addresses(text: str) -> tuple[str, ...]:
    entries = tuple(part.strip() for part in text.split(",") if part.strip())
    try:
        TrustedProxies(entries)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return entries


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
        ("max-rooms", _count(1), d.limits.max_rooms, "rooms in all, default rooms included"),
        ("rooms-per-user", _count(0), d.limits.rooms_per_user,
         "rooms one user may have created that still exist"),
        ("room-create-interval", _duration, d.limits.room_create_interval,
         "seconds between room creations per user (after a burst of rooms-per-user)"),
        ("room-expiry", _duration, d.limits.room_expiry,
         "seconds a created room may stay empty before it is removed"),
        ("sync-interval", _duration, d.limits.sync_interval,
         "seconds between sync requests per session (after a burst of 3)"),
        ("typing-interval", _duration, d.limits.typing_interval,
         "seconds between typing notices per session (after a burst of 4)"),
        ("rooms-update-interval", _duration, d.limits.rooms_update_interval,
         "seconds between room-list updates to everyone (changes in between are combined)"),
        ("metrics", _switch, "on", "Prometheus /metrics (on|off)"),
        ("dashboard", _switch, "on", "the live /dashboard and its data stream (on|off)"),
        ("dashboard-token", str, d.dashboard_token,
         "token the dashboard's viewers must give (empty: no token)"),
        ("ops-port", _ops_port, "same",
         "port for /metrics, /livez, /readyz ('same': the chat's port)"),
        ("node-name", str, d.node_name,
         "this node's name in metrics and the dashboard (empty: the host name)"),
        ("drain-window", _seconds, d.drain_window,
         "seconds over which SIGTERM spreads the clients' goodbyes (0: all at once)"),
        ("drain-timeout", _duration, d.drain_timeout,
         "seconds the drain may take before the remaining sockets are dropped"),
        ("ready-delay", _seconds, d.ready_delay,
         "seconds between /readyz turning 503 on SIGTERM and the drain"),
        ("redis-url", _redis_url, d.redis_url,
         "Redis/Valkey URL of the cluster engine shared by several nodes: redis://host:port/db, "
         "redis+cluster://host:port,... (Redis Cluster) or redis+sentinel://host:port,.../"
         "service ('': one process)"),
        ("trusted-proxies", _addresses, "",
         "comma-separated proxy addresses/networks whose X-Forwarded-For names the client "
         "(per-address limits then count clients, not the proxy)"),
    ]
    for name, kind, builtin, text in specs:
        var = ENV_PREFIX + name.upper().replace("-", "_")
        default = builtin
        if var in env:
            try:
                default = kind(env[var])
            except (ValueError, argparse.ArgumentTypeError) as exc:
                # (A Redis URL may hold a password: its error shows the URL redacted.)
                parser.error(f"{var}: {exc}" if name == "redis-url"
                             else f"{var}={env[var]!r}: {exc}")
        parser.add_argument(f"--{name}", type=kind, default=default,
                            help=f"{text} [{var}] (default: %(default)s)")
    args = parser.parse_args(argv)
    rooms = args.rooms if isinstance(args.rooms, tuple) else _rooms(args.rooms)
    if len(rooms) > args.max_rooms:
        parser.error(f"{len(rooms)} rooms given but --max-rooms is {args.max_rooms}")
    limits = ChatLimits(max_rooms=args.max_rooms, rooms_per_user=args.rooms_per_user,
                        room_create_interval=args.room_create_interval,
                        room_expiry=args.room_expiry, sync_interval=args.sync_interval,
                        typing_interval=args.typing_interval,
                        rooms_update_interval=args.rooms_update_interval)
    try:
        jwt_mode = parse_jwt_env(env)
    except ImportError as exc:
        parser.error(f"JWT mode {_missing_extra('jwt', exc)}")
    except (ValueError, OSError) as exc:
        parser.error(f"JWT mode: {exc}")
    # (argparse applies ``type`` to string defaults only: the switches' "on" and "same".)
    if args.drain_window > args.drain_timeout:
        parser.error(f"--drain-window ({args.drain_window}) must be <= --drain-timeout "
                     f"({args.drain_timeout})")
    return ChatConfig(host=args.host, port=args.port, max_connections=args.max_connections,
                      heartbeat_interval=args.heartbeat_interval,
                      history_size=args.history_size, rooms=rooms,
                      session_timeout=args.session_timeout, static_dir=args.static_dir,
                      limits=limits, jwt=jwt_mode, metrics=args.metrics,
                      dashboard=args.dashboard,
                      dashboard_token=args.dashboard_token, ops_port=args.ops_port,
                      node_name=args.node_name, drain_window=args.drain_window,
                      drain_timeout=args.drain_timeout, ready_delay=args.ready_delay,
                      redis_url=args.redis_url,
                      trusted_proxies=_addresses(args.trusted_proxies)
                      if isinstance(args.trusted_proxies, str) else args.trusted_proxies)


def build_ops(config: ChatConfig) -> Ops:
    """Metrics, probes and dashboard as ``config`` says."""
    return Ops(node=config.node_name or socket.gethostname(), metrics=config.metrics,
               dashboard=config.dashboard, dashboard_token=config.dashboard_token)


def server_options(config: ChatConfig, app: ChatApp) -> ServerOptions:
    """The server's options for ``config``, with ``app``'s hooks."""
    engine = None
    engine_config = None
    if config.redis_url:
        from sigma_redis import RedisEngine, RedisEngineConfig

        engine = RedisEngine(RedisEngineConfig(url=config.redis_url))
        # The node's name in session records and logs: --node-name, else host and process.
        engine_config = ExternalEngineConfig(
            node_id=config.node_name or f"{socket.gethostname()}-{os.getpid()}")
    return ServerOptions(
        engine=engine,
        engine_config=engine_config,
        host=config.host,
        port=config.port,
        max_connections=config.max_connections,
        heartbeat_interval=config.heartbeat_interval,
        heartbeat_timeout=max(60.0, 2.4 * config.heartbeat_interval),
        session_timeout=config.session_timeout,
        # Replay history per topic: enough for a session that comes back before it expires.
        history=HistoryLimits(max_count=1000, max_bytes=4 << 20,
                              max_age=max(300.0, config.session_timeout)),
        max_message_size=config.limits.max_message_size,
        # Each room is two topics: its timeline and its live topic (typing, away/back).
        max_topics_per_session=2 * config.limits.max_rooms,
        # Usernames from the Hello, or (JWT mode) from verified tokens.
        authenticate=app.authenticate if config.jwt is None else None,
        jwt=config.jwt.config() if config.jwt is not None else None,
        jwt_then=config.jwt.accept if config.jwt is not None else None,
        credentials_grace=config.jwt.grace if config.jwt is not None else 30.0,
        authorize_subscribe=app.authorize_subscribe,
        # /login: a token in JWT mode with SIGMASOCKETS_JWT_LOGIN, {"token": null} without JWT
        # mode (the page uses the bare name); a JWT-mode server without it issues no tokens.
        http_handler=(login_handler(config.jwt, StaticFiles(config.static_dir))
                      if config.jwt is None or config.jwt.login
                      else StaticFiles(config.static_dir)),
        # Chat messages are JSON objects: the JSON serializer encodes and decodes them.
        serializer=JSON,
        shutdown_timeout=config.drain_timeout,
        shutdown_spread=config.drain_window,
        trusted_proxies=config.trusted_proxies,
    )


def build_server(config: ChatConfig, app: ChatApp, ops: Ops | None = None) -> SigmaSocketServer:
    """The SigmaSocketServer for ``config`` with ``app`` (and ``ops``, if given) attached."""
    options = server_options(config, app)
    if ops is not None:
        options = ops.server_options(options)
    server = SigmaSocketServer(options)
    app.attach(server)
    if ops is not None:
        ops.attach(server)
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
    app = ChatApp(history_size=config.history_size, rooms=config.rooms, limits=config.limits,
                  cluster=bool(config.redis_url))
    ops = build_ops(config)
    server = build_server(config, app, ops)
    if not (config.static_dir / "index.html").is_file():
        print(f"warning: {config.static_dir}/index.html is missing: build the web app "
              f"(bash scripts/chat.sh does)", file=sys.stderr, flush=True)
    await server.start()
    app.tick()  # watch the rooms' topics now, before the first client
    url = _url(config.host, server.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    ops_server = None
    if config.ops_port is not None:
        ops_server = ops.separate_server(SigmaSocketServer, host=config.host,
                                         port=config.ops_port)
        await ops_server.start()
    feed = asyncio.create_task(ops.feed.run(loop.time, asyncio.sleep)) \
        if config.dashboard else None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"SigmaSockets chat: {url}", flush=True)
    if config.host in ("", "0.0.0.0", "::"):
        print(f"  (listening on every interface, port {server.port})", flush=True)
    if ops_server is not None:
        print(f"  operations: {_url(config.host, ops_server.port)}metrics", flush=True)
    if config.dashboard:
        print(f"  dashboard: {url}dashboard", flush=True)
    ticker = asyncio.create_task(_tick(app, min(1.0, config.limits.rooms_update_interval,
                                                config.limits.room_expiry / 2)))
    await stop.wait()
    ops.health.begin_shutdown()
    print("stopping: /readyz says 503", flush=True)
    if config.ready_delay:
        await asyncio.sleep(config.ready_delay)
    print("stopping: telling clients to come back later"
          + (f" over {config.drain_window:g} s" if config.drain_window else "") + "...",
          flush=True)
    ticker.cancel()
    if feed is not None:
        feed.cancel()
    await server.stop()
    if ops_server is not None:
        await ops_server.stop()
    print("stopped", flush=True)


async def _tick(app: ChatApp, every: float) -> None:
    """Room expiry and the room-list updates held back by ``rooms_update_interval``."""
    while True:
        await asyncio.sleep(every)
        app.tick()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    try:
        run(serve(config))
    except OSError as exc:  # port in use, bad address
        print(f"error: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0
