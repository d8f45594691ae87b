"""The engine's Redis URL: which deployment it names (one server, a Redis Cluster, a Sentinel
service) and where its servers are. Parsed once, in ``RedisEngineConfig``; a URL that cannot
work raises ``ValueError`` saying why.

* ``redis://[[user]:password@]host[:port][/db]`` — one server (``rediss://``: TLS;
  ``unix://[[user]:password@]/path[?db=N]``: a Unix socket). Port 6379, db 0 by default.
* ``redis+cluster://[[user]:password@]host:port[,host:port...]`` — a Redis Cluster, given by
  one or more startup nodes (any nodes of the cluster; the rest are discovered). Cluster has
  only database 0: a path other than ``/`` or ``/0`` is refused. ``rediss+cluster://``: TLS.
* ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]`` — the
  primary of the Sentinel service ``service``, asked of the listed sentinels (port 26379 by
  default). The user and password are the Redis servers'; the sentinels are reached without
  authentication. ``rediss+sentinel://``: TLS to the sentinels and the servers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Endpoint", "RedisTarget", "parse_target", "redact"]

_SCHEMES = {
    "redis": ("standalone", False), "rediss": ("standalone", True),
    "unix": ("standalone", False),
    "redis+cluster": ("cluster", False), "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False), "rediss+sentinel": ("sentinel", True),
}
_SERVICE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server: ``host``/``port`` (``port`` 0: ``host`` is a Unix socket path)."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def __str__(self) -> str:
        if self.port == 0:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def at(self, host: str, port: int) -> Endpoint:
        """Another server of the same deployment (same credentials and TLS)."""
        return Endpoint(host, port, self.username, self.password, self.tls)


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a URL names. ``kind``: ``standalone``, ``cluster`` or ``sentinel``; ``endpoints``:
    the server, the startup nodes or the sentinels (sentinels without credentials);
    ``service``: the Sentinel service name; ``username``/``password``/``tls``: the Redis
    servers'."""

    kind: str
    endpoints: tuple[Endpoint, ...]
    db: int = 0
    service: str = ""
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def server(self, host: str, port: int) -> Endpoint:
        """A Redis server of this deployment (its credentials and TLS)."""
        return Endpoint(host, port, self.username, self.password, self.tls)


def _hosts(netloc: str, default_port: int, url: str) -> list[tuple[str, int]]:
    out = []
    for raw in netloc.split(","):
        item = raw.strip()
        if not item:
            raise ValueError(f"Redis URL {redact(url)!r}: empty host in the host list")
        if item.startswith("["):
            host, sep, rest = item[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"Redis URL {redact(url)!r}: bad IPv6 address {item!r}")
            port_text = rest[1:]
        else:
            host, _, port_text = item.partition(":")
        if not host:
            raise ValueError(f"Redis URL {redact(url)!r}: empty host in {item!r}")
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ValueError(f"Redis URL {redact(url)!r}: bad port {port_text!r}")
            port = int(port_text)
        else:
            port = default_port
        out.append((host, port))
    return out


def _db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ValueError(f"Redis URL {redact(url)!r}: database {text!r} is not a number")
    return int(text)


def parse_target(url: str) -> RedisTarget:
    """The deployment ``url`` names; ``ValueError`` with the reason when it cannot work."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise ValueError(
            f"Redis URL {redact(url)!r}: unknown scheme {scheme!r} (use redis://, rediss://, "
            f"unix://, redis+cluster://, rediss+cluster:// or redis+sentinel://, "
            f"rediss+sentinel://)")
    scheme = scheme.lower()
    kind, tls = _SCHEMES[scheme]
    netloc, slash, path_query = rest.partition("/")
    path, _, query = ("/" + path_query if slash else "").partition("?")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, secret = userinfo.partition(":")  # as coredis reads it: "user@" is a
        username = unquote(user) or None                 # user without a password
        password = unquote(secret) if colon else None
    if scheme == "unix":
        parts = urlsplit(url)
        db = _db(parse_qs(parts.query).get("db", ["0"])[0], url)
        if not parts.path:
            raise ValueError(f"Redis URL {redact(url)!r}: no socket path")
        return RedisTarget("standalone", (Endpoint(parts.path, 0, username, password),), db,
                           username=username, password=password)
    if query:
        raise ValueError(f"Redis URL {redact(url)!r}: query parameters are not supported")
    if kind == "standalone":
        hosts = _hosts(netloc, 6379, url)
        if len(hosts) != 1:
            raise ValueError(f"Redis URL {redact(url)!r} names {len(hosts)} servers: a list "
                             f"is for redis+cluster:// (startup nodes) or redis+sentinel:// "
                             f"(sentinels)")
        db = _db(path.strip("/") or "0", url)
        host, port = hosts[0]
        return RedisTarget("standalone", (Endpoint(host, port, username, password, tls),), db,
                           username=username, password=password, tls=tls)
    if kind == "cluster":
        if path.strip("/") not in ("", "0"):
            raise ValueError(f"Redis URL {redact(url)!r}: Redis Cluster has only database 0")
        hosts = _hosts(netloc, 6379, url)
        return RedisTarget("cluster", tuple(Endpoint(h, p, username, password, tls)
                                            for h, p in hosts),
                           username=username, password=password, tls=tls)
    parts_path = [p for p in path.split("/") if p]
    if not parts_path:
        raise ValueError(f"Redis URL {redact(url)!r}: no service name (redis+sentinel://"
                         f"host:port/<service>[/db])")
    if len(parts_path) > 2:
        raise ValueError(f"Redis URL {redact(url)!r}: the path is /<service>[/db]")
    service = unquote(parts_path[0])
    if not _SERVICE.match(service):
        raise ValueError(f"Redis URL {redact(url)!r}: bad service name {service!r}")
    db = _db(parts_path[1], url) if len(parts_path) == 2 else 0
    hosts = _hosts(netloc, 26379, url)
    return RedisTarget("sentinel", tuple(Endpoint(h, p, tls=tls) for h, p in hosts), db, service,
                       username=username, password=password, tls=tls)


def redact(url: str) -> str:
    """``url`` without its password (for logs and errors)."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
