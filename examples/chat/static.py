"""Serving the built web app (``web/dist``) through ``ServerOptions.http_handler``.

The adapter passes every GET/HEAD without an ``Upgrade`` header to the handler as an
``HttpRequest`` and writes the ``HttpResponse`` it returns, then closes the connection; WebSocket
upgrades on the same port go to the hub. The handler serves files below ``root`` only: the path is
decoded, resolved (symlinks and ``..`` included) and must stay inside ``root``; ``/`` is
``index.html``; anything else is 404. Text assets are gzipped once when the browser accepts it.

Every response carries security headers (:func:`security_headers`): a Content-Security-Policy
that allows scripts only from this origin (no inline script, no ``eval``), WebSockets only to
this host name (any port: ``?ws=`` may point at another port of the same host, never another
host), no framing, no plugins, no forms, no ``<base>``; plus ``nosniff``, ``no-referrer``,
``X-Frame-Options: DENY``, cross-origin isolation of the window and resources, and a
Permissions-Policy that turns off camera, microphone, geolocation and the like.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sigma_core.api import HttpRequest, HttpResponse

__all__ = ["CONTENT_TYPES", "HttpRequest", "HttpResponse", "StaticFiles", "security_headers"]

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".eot": "application/vnd.ms-fontobject",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}
_COMPRESSIBLE = {".html", ".js", ".mjs", ".css", ".json", ".map", ".svg", ".txt", ".ttf", ".eot"}
_SECURITY_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)
# style-src needs 'unsafe-inline': Vuetify writes its theme into a <style> element at run time
# (it can take a nonce, which a static file cannot carry). Inline *scripts* stay forbidden.
# font-src and img-src allow data: for the fonts Vite inlines into the CSS and the favicon.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "font-src 'self' data:; img-src 'self' data:; manifest-src 'self'; "
        "connect-src 'self'{ws}; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'; object-src 'none'")
#: A Host header we put into the CSP: a DNS name or IPv4 address, or an IPv6 literal, and a port.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str
    immutable: bool


class StaticFiles:
    """``StaticFiles(root)`` is an ``http_handler``: call it with an ``HttpRequest``.

    Files are read once and kept in memory (the build output does not change while the server
    runs; restart after rebuilding)."""

    def __init__(self, root: Path, *, on_miss: Callable[[str], None] | None = None) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, _File] = {}
        self._on_miss = on_miss

    def __call__(self, request: HttpRequest) -> HttpResponse:
        host = _header(request, "host")
        if request.method not in ("GET", "HEAD"):
            return _text(405, "method not allowed", host, (("allow", "GET, HEAD"),))
        target = self._resolve(request.path)
        if target is None:
            if self._on_miss is not None:
                self._on_miss(request.path)
            return _text(404, "not found", host)
        file = self._load(target)
        if file is None:
            return _text(404, "not found", host)
        headers: list[tuple[str, str]] = [
            ("content-type", file.content_type),
            ("etag", file.etag),
            ("cache-control", "public, max-age=31536000, immutable" if file.immutable
             else "no-cache"),
            *security_headers(_header(request, "host")),
        ]
        if _header(request, "if-none-match") == file.etag:
            return HttpResponse(status=304, headers=tuple(headers))
        body = file.body
        if file.gzipped is not None:
            headers.append(("vary", "accept-encoding"))
            if "gzip" in (_header(request, "accept-encoding") or "").lower():
                body = file.gzipped
                headers.append(("content-encoding", "gzip"))
        # HEAD gets the GET's body too: the core derives Content-Length from it, then omits it.
        return HttpResponse(status=200, headers=tuple(headers), body=body)

    def _resolve(self, raw_path: str) -> Path | None:
        """The file under ``root`` that ``raw_path`` names, or None (never outside root)."""
        try:
            path = unquote(urlsplit(raw_path).path, errors="strict") if raw_path else "/"
        except (UnicodeDecodeError, ValueError):
            return None
        if not path.startswith("/") or "\x00" in path or "\\" in path:
            return None
        relative = path.lstrip("/") or "index.html"
        if any(part.startswith(".") for part in relative.split("/")):
            return None  # no dotfiles (build stamps), no "..": 404 before touching the disk
        try:
            target = (self.root / relative).resolve()
        except (OSError, RuntimeError, ValueError):  # symlink loops, odd names
            return None
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target

    def _load(self, target: Path) -> _File | None:
        file = self._cache.get(target)
        if file is not None:
            return file
        try:
            body = target.read_bytes()
        except OSError:
            return None
        suffix = target.suffix.lower()
        gzipped = None
        if suffix in _COMPRESSIBLE and len(body) > 512:
            packed = gzip.compress(body, compresslevel=6, mtime=0)
            gzipped = packed if len(packed) < len(body) else None
        relative = target.relative_to(self.root)
        file = _File(
            body=body,
            gzipped=gzipped,
            content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            # Vite puts content-hashed names under assets/: cache those forever.
            immutable=relative.parts[:1] == ("assets",),
        )
        self._cache[target] = file
        return file


def _header(request: HttpRequest, name: str) -> str | None:
    return next((v for k, v in request.headers if k.lower() == name), None)


def security_headers(host: str | None) -> tuple[tuple[str, str], ...]:
    """The security headers of a response to a request with this ``Host`` header: the CSP
    lets the page open WebSockets to that host name on any port (only 'self' when the header
    is missing or not a plain host name, so nothing from it reaches the header unchecked)."""
    ws = ""
    match = _HOST.fullmatch(host.strip()) if host else None
    if match is not None:
        name = match.group(1).lower()
        ws = f" ws://{name}:* wss://{name}:*"
    return (("content-security-policy", _CSP.format(ws=ws)), *_SECURITY_HEADERS)


def _text(status: int, text: str, host: str | None,
          extra: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    return HttpResponse(status=status, body=text.encode() + b"\n", headers=(
        ("content-type", "text/plain; charset=utf-8"), *security_headers(host), *extra))
