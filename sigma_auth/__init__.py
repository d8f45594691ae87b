"""JWT authentication for SigmaSockets servers, on PyJWT (``pip install sigmasockets[jwt]``).

* :class:`JwtConfig` — what is accepted: an explicit algorithm allow-list, the key (a secret, a
  PEM public key, or a JWKS URL / document), ``aud``/``iss``/leeway, the claim names.
* :class:`JwtVerifier` — a pure object: a token and the wall-clock ``now`` in, :class:`Claims` or
  :class:`TokenRejected` out. It reads no clock and does no I/O; JWKS keys are fed to it.
* :class:`JwksCache` — the JWKS key set as a small pure policy: when to fetch, what to do with a
  fetched document or a failure, when cached keys are too old to trust.
* :func:`fetch_jwks` — the one blocking call (an HTTP GET); the adapters run it in a worker
  thread, so a slow or dead JWKS endpoint never blocks the event loop.

Why a package beside ``sigma_core`` and not inside it: importing PyJWT loads ``urllib`` (for its own
JWKS client), which the sans-IO core may not import (tests/test_purity.py). See docs/auth.md.
"""

from __future__ import annotations

from .serving import ServerAuth, server_auth
from .tokens import (
    Claims,
    JwksCache,
    JwtConfig,
    JwtVerifier,
    TokenRejected,
    fetch_jwks,
    jwt_authenticator,
)

__all__ = [
    "Claims",
    "JwksCache",
    "JwtConfig",
    "JwtVerifier",
    "ServerAuth",
    "TokenRejected",
    "fetch_jwks",
    "jwt_authenticator",
    "server_auth",
]
