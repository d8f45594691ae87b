"""Serving the built web app (``web/dist``) through ``ServerOptions.http_handler``.

The adapter passes every GET/HEAD without an ``Upgrade`` header to the handler as an
``HttpRequest`` and writes the ``HttpResponse`` it returns, then closes the connection; WebSocket
upgrades on the same port go to the hub. The handler serves files below ``root`` only: the path is
decoded, resolved (symlinks and ``..`` included) and must stay inside ``root``; ``/`` is
``index.html``; anything else is 404. Text assets are gzipped once when the browser accepts it.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sigma_core.api import HttpRequest, HttpResponse

__all__ = ["CONTENT_TYPES", "HttpRequest", "HttpResponse", "StaticFiles"]

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
)


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
        if request.method not in ("GET", "HEAD"):
            return _text(405, "method not allowed", (("allow", "GET, HEAD"),))
        target = self._resolve(request.path)
        if target is None:
            if self._on_miss is not None:
                self._on_miss(request.path)
            return _text(404, "not found")
        file = self._load(target)
        if file is None:
            return _text(404, "not found")
        headers: list[tuple[str, str]] = [
            ("content-type", file.content_type),
            ("etag", file.etag),
            ("cache-control", "public, max-age=31536000, immutable" if file.immutable
             else "no-cache"),
            *_SECURITY_HEADERS,
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


def _text(status: int, text: str,
          extra: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    return HttpResponse(status=status, body=text.encode() + b"\n", headers=(
        ("content-type", "text/plain; charset=utf-8"), *_SECURITY_HEADERS, *extra))
