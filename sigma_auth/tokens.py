"""JWT verification (pure) and the JWKS key cache policy; :func:`fetch_jwks` is the only I/O.

Theory of operation
-------------------
:meth:`JwtVerifier.verify` checks, in this order, and refuses at the first failure with a
:class:`TokenRejected` whose ``reason`` is one of :data:`REASONS` (the token itself never appears
in a reason, a log line or an exception):

1. size (``max_token_size`` bytes) and shape (three base64url segments, a JSON header);
2. the header's ``alg``: in the allow-list, never ``none``, and of the family of the key
   (``HS*`` only with a secret; ``RS*``/``PS*`` with RSA, ``ES*`` with EC, ``EdDSA`` with OKP);
3. the key: the configured secret or PEM, or the JWKS key named by the header's ``kid``;
4. the signature, ``aud`` (when configured; a token carrying an ``aud`` is refused when none
   is configured), ``iss`` (when configured) — by PyJWT;
5. ``exp`` and ``sub`` present; ``exp``/``nbf`` against the caller's ``now`` with ``leeway``
   (PyJWT's own clock is not used: the verifier is deterministic).

Claims then map to what a session carries: ``sub`` → identity, ``info`` → metadata (shown in
presence), ``channels`` → topics subscribed on connect, ``topics`` → the topic permission
(subscribe authorization), ``rate`` → per-identity rate limits, ``exp`` → when the credentials
expire (the client refreshes before then).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from sigma_core.hub import AuthAccept, AuthRefuse, AuthRequest
from sigma_core.ratelimit import RateLimit

__all__ = [
    "REASONS",
    "Claims",
    "JwksCache",
    "JwtConfig",
    "JwtVerifier",
    "TokenRejected",
    "fetch_jwks",
    "jwt_authenticator",
]

KeyFamily = Literal["oct", "RSA", "EC", "OKP"]

#: Algorithm → the key type it needs. Anything else (``none`` included) is never accepted.
_FAMILY: dict[str, KeyFamily] = {
    "HS256": "oct", "HS384": "oct", "HS512": "oct",
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
    "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC", "ES384": "EC", "ES512": "EC", "ES256K": "EC",
    "EdDSA": "OKP",
}

#: Every ``TokenRejected.reason``; the Goodbye's message is ``"token " + reason``.
REASONS = ("missing", "too large", "malformed", "algorithm not allowed", "unknown key",
           "keys unavailable", "bad signature", "wrong audience", "wrong issuer",
           "missing claim", "invalid claim", "expired", "not yet valid")


class TokenRejected(Exception):
    """A token was refused. ``reason`` is one of :data:`REASONS`; ``retryable`` is True only
    when the server could not check it yet (JWKS keys unavailable or the key id unknown while a
    fetch is due): the client is told to come back later (close 1013), not refused for good."""

    def __init__(self, reason: str, detail: str = "", *, retryable: bool = False) -> None:
        super().__init__(f"token {reason}" + (f": {detail}" if detail else ""))
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtConfig:
    """What a server accepts as a connection token.

    Exactly one key source: ``secret`` (HMAC), ``public_key`` (a PEM public key), ``jwks`` (a
    JWKS document, e.g. loaded from a file) or ``jwks_url`` (fetched, cached, refreshed by the
    adapter off the event loop).

    Raises:
        ValueError: no or several key sources, an empty allow-list, ``none`` or an unknown
            algorithm, an algorithm the key cannot verify (``HS*`` with a public key, or an
            asymmetric algorithm with a secret), a PEM that is not a public key, or a limit out
            of range (the message says which).
    """

    #: Allowed ``alg`` values (required, no default: a server names what it trusts).
    algorithms: tuple[str, ...]
    secret: str | bytes | None = None
    public_key: str | bytes | None = None
    jwks: Mapping[str, Any] | None = None
    jwks_url: str | None = None
    #: When set, ``aud`` must contain it; when None, a token carrying ``aud`` is refused.
    audience: str | None = None
    #: When set, ``iss`` must equal it.
    issuer: str | None = None
    #: Seconds of clock skew tolerated on ``exp`` and ``nbf``.
    leeway: float = 0.0
    #: Longer tokens are refused before any parsing (bytes of the UTF-8 token).
    max_token_size: int = 8192
    #: Claim names.
    info_claim: str = "info"
    channels_claim: str = "channels"
    topics_claim: str = "topics"
    rate_claim: str = "rate"
    #: JWKS: seconds between fetches; seconds before retrying a failed fetch (doubling up to
    #: ``jwks_refresh_interval``); seconds cached keys stay trusted without a successful fetch
    #: (past it nobody is admitted until a fetch succeeds); the fetch's HTTP timeout.
    jwks_refresh_interval: float = 300.0
    jwks_retry_interval: float = 5.0
    jwks_max_stale: float = 3600.0
    jwks_timeout: float = 5.0

    def __post_init__(self) -> None:
        sources = [s for s in (self.secret, self.public_key, self.jwks, self.jwks_url)
                   if s is not None]
        if len(sources) != 1:
            raise ValueError("JwtConfig needs exactly one of secret, public_key, jwks, jwks_url "
                             f"(got {len(sources)})")
        if not self.algorithms:
            raise ValueError("JwtConfig.algorithms must list at least one algorithm")
        for alg in self.algorithms:
            if alg not in _FAMILY:
                raise ValueError(f"JwtConfig.algorithms: {alg!r} is not allowed "
                                 f"(supported: {', '.join(_FAMILY)}; never 'none')")
        families = {_FAMILY[a] for a in self.algorithms}
        if self.secret is not None:
            if families != {"oct"}:
                others = sorted(a for a in self.algorithms if _FAMILY[a] != "oct")
                raise ValueError("JwtConfig: a secret verifies HS256/HS384/HS512 only; "
                                 f"remove {others}")
            secret = self.secret.encode() if isinstance(self.secret, str) else self.secret
            # RFC 7518 §3.2: an HMAC key at least as long as the hash output.
            need = max(int(a[2:]) // 8 for a in self.algorithms)
            if len(secret) < need:
                raise ValueError(f"JwtConfig.secret is {len(secret)} bytes; "
                                 f"{'/'.join(self.algorithms)} needs at least {need} "
                                 "(RFC 7518 §3.2)")
        elif "oct" in families:
            raise ValueError("JwtConfig: HS* algorithms need a secret; with a public key they "
                             "would let anyone holding the public key sign tokens")
        if self.public_key is not None:
            family = _pem_family(self.public_key)
            if families != {family}:
                raise ValueError(f"JwtConfig: the PEM holds a {family} key; algorithms "
                                 f"{sorted(a for a in self.algorithms if _FAMILY[a] != family)} "
                                 "cannot be verified with it")
        if self.jwks_url is not None and not self.jwks_url.startswith(("https://", "http://")):
            raise ValueError("JwtConfig.jwks_url must be an http:// or https:// URL")
        if self.max_token_size < 16:
            raise ValueError("JwtConfig.max_token_size must be >= 16")
        for name in ("leeway", "jwks_refresh_interval", "jwks_retry_interval",
                     "jwks_max_stale", "jwks_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"JwtConfig.{name} must be finite and >= 0")
        if self.jwks_timeout <= 0 or self.jwks_retry_interval <= 0:
            raise ValueError("JwtConfig.jwks_timeout and jwks_retry_interval must be > 0")


def _pem_family(pem: str | bytes) -> KeyFamily:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = load_pem_public_key(data)
    except ValueError as exc:
        raise ValueError("JwtConfig.public_key is not a PEM public key "
                         "(a private key or certificate does not belong here)") from exc
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "OKP"
    raise ValueError(f"JwtConfig.public_key: unsupported key type {type(key).__name__}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Claims:
    """A verified token, as a session uses it."""

    #: ``sub``: the identity (``Session.identity``).
    subject: str
    #: ``exp``: when the credentials expire, wall-clock seconds since the epoch.
    expires_at: float
    #: ``info``: shown in presence (``Session.metadata``); values that are not strings are
    #: kept as their JSON text.
    info: Mapping[str, str] = field(default_factory=dict)
    #: ``channels``: topics the session is subscribed to when it connects.
    channels: tuple[str, ...] = ()
    #: ``topics``: the topics this identity may subscribe to (a name, or a prefix ending in
    #: ``*``); None when the claim is absent (the server's ``authorize_subscribe`` decides).
    topics: tuple[str, ...] | None = None
    #: ``rate``: per-identity limits, ``{"messages_per_second": n, "bytes_per_second": n}``.
    rate_limit: RateLimit | None = None
    #: Every claim as decoded.
    raw: Mapping[str, Any] = field(default_factory=dict)


class JwksCache:
    """The JWKS key set and when to fetch it, as a pure policy (``now`` is the caller's
    monotonic clock). The adapter asks :meth:`next_fetch_at`, runs :func:`fetch_jwks` in a worker
    thread, and reports :meth:`fetched` or :meth:`failed`."""

    def __init__(self, config: JwtConfig) -> None:
        self._config = config
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at = -math.inf
        self._next_fetch = -math.inf  # fetch at once
        self._retry = config.jwks_retry_interval
        #: Fetches that failed in a row.
        self.failures = 0
        #: Why the last fetch failed ("" after a success).
        self.last_error = ""

    def next_fetch_at(self) -> float:
        return self._next_fetch

    def fetched(self, document: Any, now: float) -> None:
        """A fetch returned ``document`` (parsed JSON). A document without a usable key counts as
        a failure: the keys held so far are kept until they go stale."""
        keys = _jwks_keys(document)
        if not keys:
            self.failed("the JWKS document has no usable key", now)
            return
        self._keys = keys
        self._fetched_at = now
        self._next_fetch = now + self._config.jwks_refresh_interval
        self._retry = self._config.jwks_retry_interval
        self.failures = 0
        self.last_error = ""

    def failed(self, error: str, now: float) -> None:
        self.failures += 1
        self.last_error = error
        self._next_fetch = now + self._retry
        self._retry = min(self._retry * 2, max(self._config.jwks_refresh_interval,
                                               self._config.jwks_retry_interval))

    def key(self, kid: str | None, now: float) -> dict[str, Any]:
        """The JWK for ``kid``, or :class:`TokenRejected` (retryable when a fetch may fix it:
        keys stale or never fetched, or an unknown id, which also brings the next fetch
        forward so that a rotated key is picked up within ``jwks_retry_interval``)."""
        if now - self._fetched_at > self._config.jwks_max_stale:
            raise TokenRejected("keys unavailable", "the JWKS could not be fetched",
                                retryable=True)
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise TokenRejected("unknown key", "the token names no kid")
        jwk = self._keys.get(kid)
        if jwk is None:
            soon = now + self._config.jwks_retry_interval
            self._next_fetch = min(self._next_fetch, soon)
            raise TokenRejected("unknown key", "kid not in the JWKS", retryable=True)
        return jwk


def _jwks_keys(document: Any) -> dict[str, dict[str, Any]]:
    keys: dict[str, dict[str, Any]] = {}
    if not isinstance(document, Mapping):
        return keys
    entries = document.get("keys")
    if not isinstance(entries, list):
        return keys
    for index, jwk in enumerate(entries):
        if (isinstance(jwk, dict) and jwk.get("kty") in {"RSA", "EC", "OKP"}
                and jwk.get("use", "sig") == "sig"):
            keys[str(jwk.get("kid", f"#{index}"))] = jwk
    return keys


class JwtVerifier:
    """Verifies connection tokens against a :class:`JwtConfig`. Pure: no clock, no I/O."""

    def __init__(self, config: JwtConfig) -> None:
        self.config = config
        self._allowed = frozenset(config.algorithms)
        self.jwks: JwksCache | None = None
        if config.jwks_url is not None:
            self.jwks = JwksCache(config)
        self._static_jwks = _jwks_keys(config.jwks) if config.jwks is not None else None
        if self._static_jwks is not None and not self._static_jwks:
            raise ValueError("JwtConfig.jwks holds no usable signing key")
        self._pyjwt = jwt.PyJWT()

    def verify(self, token: str, now: float, monotonic: float | None = None) -> Claims:
        """Check ``token`` at wall-clock time ``now`` (seconds since the epoch);
        ``monotonic`` is the clock of the JWKS cache (defaults to ``now``).

        Raises:
            TokenRejected: the token is refused (``reason`` says why, never quoting it).
        """
        config = self.config
        if not token:
            raise TokenRejected("missing")
        if len(token.encode("utf-8", "replace")) > config.max_token_size:
            raise TokenRejected("too large", f"more than {config.max_token_size} bytes")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._allowed:
            raise TokenRejected("algorithm not allowed")  # (the header is not echoed)
        key: Any
        if config.secret is not None:
            key = config.secret
        elif config.public_key is not None:
            key = config.public_key
        else:
            kid = header.get("kid")
            kid = kid if isinstance(kid, str) else None
            jwk = self._static_key(kid) if self._static_jwks is not None else None
            if jwk is None:
                assert self.jwks is not None
                jwk = self.jwks.key(kid, now if monotonic is None else monotonic)
            if _FAMILY[alg] != jwk.get("kty") or jwk.get("alg", alg) != alg:
                raise TokenRejected("algorithm not allowed", "not the key's algorithm")
            try:
                key = jwt.PyJWK(jwk, alg)
            except jwt.PyJWTError:
                raise TokenRejected("unknown key", "unusable JWK") from None
        try:
            claims = self._pyjwt.decode(
                token, key, algorithms=[alg], audience=config.audience, issuer=config.issuer,
                options={"require": ["exp", "sub"], "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "verify_aud": True,
                         "verify_iss": config.issuer is not None})
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected("missing claim", repr(exc.claim)) from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("bad signature") from None
        except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
            raise TokenRejected("algorithm not allowed", "not the key's algorithm") from None
        except jwt.DecodeError:
            raise TokenRejected("malformed") from None
        except jwt.PyJWTError:
            raise TokenRejected("invalid claim") from None
        return self._claims(claims, now)

    def _static_key(self, kid: str | None) -> dict[str, Any]:
        keys = self._static_jwks
        assert keys is not None
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        jwk = keys.get(kid or "")
        if jwk is None:
            raise TokenRejected("unknown key", "kid not in the JWKS")
        return jwk

    def _claims(self, claims: Mapping[str, Any], now: float) -> Claims:
        config = self.config
        exp, sub = claims["exp"], claims["sub"]
        if not isinstance(exp, int | float) or isinstance(exp, bool) or not math.isfinite(exp):
            raise TokenRejected("invalid claim", "'exp' is not a number")
        if not isinstance(sub, str) or not sub:
            raise TokenRejected("invalid claim", "'sub' is not a non-empty string")
        if exp <= now - config.leeway:
            raise TokenRejected("expired")
        nbf = claims.get("nbf")
        if nbf is not None:
            if not isinstance(nbf, int | float) or isinstance(nbf, bool):
                raise TokenRejected("invalid claim", "'nbf' is not a number")
            if nbf > now + config.leeway:
                raise TokenRejected("not yet valid")
        info = claims.get(config.info_claim, {})
        if not isinstance(info, Mapping):
            raise TokenRejected("invalid claim", f"{config.info_claim!r} is not an object")
        channels = _strings(claims.get(config.channels_claim, []), config.channels_claim)
        topics_claim = claims.get(config.topics_claim)
        topics = (None if topics_claim is None
                  else _strings(topics_claim, config.topics_claim))
        rate = claims.get(config.rate_claim)
        rate_limit = None
        if rate is not None:
            if not isinstance(rate, Mapping):
                raise TokenRejected("invalid claim", f"{config.rate_claim!r} is not an object")
            try:
                rate_limit = RateLimit(
                    messages_per_second=float(rate.get("messages_per_second", 0)),
                    bytes_per_second=float(rate.get("bytes_per_second", 0)))
            except (TypeError, ValueError):
                raise TokenRejected("invalid claim",
                                    f"{config.rate_claim!r} has a bad value") from None
        return Claims(
            subject=sub, expires_at=float(exp),
            info={str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                  for k, v in info.items()},
            channels=channels, topics=topics, rate_limit=rate_limit, raw=dict(claims))


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TokenRejected("invalid claim", f"{name!r} is not a list of strings")
    return tuple(value)


def jwt_authenticator(verifier: JwtVerifier,
                      then: Callable[[AuthRequest, Claims], AuthAccept | AuthRefuse] | None = None
                      ) -> Callable[[AuthRequest], AuthAccept | AuthRefuse]:
    """An ``authenticate`` hook that verifies ``Hello.auth_token`` with ``verifier``.

    A valid token becomes an :class:`~sigma_core.hub.AuthAccept` carrying the claims (identity,
    info, channels, topic permission, rate limit, expiry); ``then`` (optional) may inspect the
    claims and refuse or adjust. A refused token becomes ``AuthRefuse("token <reason>")``
    (close 4005), or, when the keys could not be had yet, a retryable refusal (close 1013).
    """

    def authenticate(request: AuthRequest) -> AuthAccept | AuthRefuse:
        try:
            claims = verifier.verify(request.hello.auth_token, request.now, request.monotonic)
        except TokenRejected as exc:
            return AuthRefuse(message=str(exc),
                              retry_after=verifier.config.jwks_retry_interval
                              if exc.retryable else None)
        accept = AuthAccept(identity=claims.subject, metadata=claims.info,
                            channels=claims.channels, topics=claims.topics,
                            rate_limit=claims.rate_limit, expires_at=claims.expires_at)
        return accept if then is None else then(request, claims)

    return authenticate


def fetch_jwks(url: str, timeout: float) -> Any:
    """GET a JWKS document (blocking: run it in a worker thread). Returns the parsed JSON.

    Raises:
        OSError: the endpoint could not be reached or answered with an error or non-JSON
            (the message names the URL's host, never a query string).
    """
    client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=math.ceil(timeout))
    try:
        return client.fetch_data()
    except jwt.PyJWTError as exc:
        raise OSError(f"JWKS fetch failed: {type(exc).__name__}") from None
