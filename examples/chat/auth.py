"""The chat's optional JWT mode: tokens instead of a bare username (``SIGMASOCKETS_JWT_*``).

Off unless one key source is set:

=============================== ==============================================================
variable                        meaning
=============================== ==============================================================
``SIGMASOCKETS_JWT_SECRET``     HMAC secret (at least 32 bytes for HS256)
``SIGMASOCKETS_JWT_PUBLIC_KEY`` path of a PEM public key (RS*/PS*/ES*/EdDSA)
``SIGMASOCKETS_JWT_JWKS_URL``   a JWKS URL, fetched and refreshed by the server
``SIGMASOCKETS_JWT_ALGORITHMS`` comma-separated allow-list (default ``HS256`` with a secret,
                                ``RS256`` otherwise)
``SIGMASOCKETS_JWT_AUDIENCE``   required ``aud`` (optional)
``SIGMASOCKETS_JWT_ISSUER``     required ``iss`` (optional)
``SIGMASOCKETS_JWT_LEEWAY``     seconds of clock skew (default 0)
``SIGMASOCKETS_JWT_LOGIN``      ``1``: serve ``GET /login?user=NAME``, which issues a token
                                signed with the secret (demo only: anyone may log in as anyone)
``SIGMASOCKETS_JWT_LIFETIME``   seconds a login token lives (default 600); the web app
                                refreshes it over the open connection before it expires
``SIGMASOCKETS_JWT_GRACE``      seconds a connection stays open past its token's expiry
                                without a refresh, then close 4010 (default 30)
=============================== ==============================================================

The username is the token's ``info.name``, else its ``sub``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from sigma_core.api import HttpRequest, HttpResponse
from sigma_core.hub import AuthAccept, AuthRefuse, AuthRequest

from .app import MAX_USERNAME, clean_username

if TYPE_CHECKING:  # sigma_auth needs the jwt extra: imported only when the mode is on
    from sigma_auth import Claims, JwtConfig

__all__ = ["ChatJwt", "login_handler", "parse_jwt_env"]

PREFIX = "SIGMASOCKETS_JWT_"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatJwt:
    """The chat's JWT settings (see the module docstring)."""

    algorithms: tuple[str, ...]
    secret: str | None = None
    public_key: bytes | None = None
    jwks_url: str | None = None
    audience: str | None = None
    issuer: str | None = None
    leeway: float = 0.0
    login: bool = False
    lifetime: float = 600.0
    grace: float = 30.0

    def __post_init__(self) -> None:
        if self.login and self.secret is None:
            raise ValueError(f"{PREFIX}LOGIN needs {PREFIX}SECRET (the login endpoint signs "
                             "tokens with it)")
        if not self.lifetime > 0:
            raise ValueError(f"{PREFIX}LIFETIME must be > 0")
        if not self.grace >= 0:
            raise ValueError(f"{PREFIX}GRACE must be >= 0")
        self.config()  # refuses what cannot be verified safely

    def config(self) -> JwtConfig:
        from sigma_auth import JwtConfig

        return JwtConfig(algorithms=self.algorithms, secret=self.secret,
                         public_key=self.public_key, jwks_url=self.jwks_url,
                         audience=self.audience, issuer=self.issuer, leeway=self.leeway)

    @staticmethod
    def accept(_: AuthRequest, claims: Claims) -> AuthAccept | AuthRefuse:
        """After the token verified (``ServerOptions.jwt_then``): the username from its
        claims."""
        user = clean_username(claims.info.get("name", "") or claims.subject)
        if not user:
            return AuthRefuse(message=f"the token names no username of 1 to "
                              f"{MAX_USERNAME} characters")
        return AuthAccept(identity=user, metadata={"user": user},
                          channels=claims.channels, topics=claims.topics,
                          rate_limit=claims.rate_limit, expires_at=claims.expires_at)

    def issue(self, user: str, now: float) -> str:
        """A token for ``user`` (the login endpoint)."""
        import jwt

        assert self.secret is not None
        claims: dict[str, object] = {"sub": user, "info": {"name": user}, "iat": int(now),
                                     "exp": int(now + self.lifetime)}
        if self.audience is not None:
            claims["aud"] = self.audience
        if self.issuer is not None:
            claims["iss"] = self.issuer
        return jwt.encode(claims, self.secret, algorithm=self.algorithms[0])


def parse_jwt_env(env: Mapping[str, str]) -> ChatJwt | None:
    """The JWT mode the environment asks for, or None (off).

    Raises:
        ValueError: the variables are inconsistent (the message names them).
    """
    secret = env.get(PREFIX + "SECRET")
    pem_path = env.get(PREFIX + "PUBLIC_KEY")
    jwks_url = env.get(PREFIX + "JWKS_URL")
    if secret is None and pem_path is None and jwks_url is None:
        return None
    default_alg = "HS256" if secret is not None else "RS256"
    algorithms = tuple(a.strip() for a in env.get(PREFIX + "ALGORITHMS", default_alg).split(",")
                       if a.strip())
    return ChatJwt(
        algorithms=algorithms, secret=secret,
        public_key=Path(pem_path).read_bytes() if pem_path else None, jwks_url=jwks_url,
        audience=env.get(PREFIX + "AUDIENCE") or None, issuer=env.get(PREFIX + "ISSUER") or None,
        leeway=float(env.get(PREFIX + "LEEWAY", "0")),
        login=env.get(PREFIX + "LOGIN", "") in ("1", "true", "yes"),
        lifetime=float(env.get(PREFIX + "LIFETIME", "600")),
        grace=float(env.get(PREFIX + "GRACE", "30")))


def login_handler(jwt_mode: ChatJwt | None, static: Callable[[HttpRequest], HttpResponse],
                  clock: Callable[[], float] = time.time
                  ) -> Callable[[HttpRequest], HttpResponse]:
    """``GET /login?user=NAME`` issues a token (``{"token": ..., "expires_at": ...}``);
    without JWT mode (``jwt_mode`` None) it answers ``{"token": null}``: the web app then
    connects with the bare name. Every other request goes to ``static``."""

    def handle(request: HttpRequest) -> HttpResponse:
        url = urlsplit(request.path)
        if url.path != "/login":
            return static(request)
        headers = (("content-type", "application/json"), ("cache-control", "no-store"))
        if jwt_mode is None:  # the name is checked where it is used: the Hello (4005)
            return HttpResponse(status=200, headers=headers, body=b'{"token":null}')
        user = clean_username(parse_qs(url.query).get("user", [""])[0])
        if not user:
            error = {"error": f"choose a username of 1 to {MAX_USERNAME} characters"}
            return HttpResponse(status=400, headers=headers, body=json.dumps(error).encode())
        now = clock()
        body = {"token": jwt_mode.issue(user, now), "expires_at": now + jwt_mode.lifetime}
        return HttpResponse(status=200, headers=headers, body=json.dumps(body).encode())

    return handle
