"""What both adapters do with ``ServerOptions.jwt``: build the hook, and keep JWKS keys fresh.

The refresh loop is written once, on callables the adapter supplies (its clock, its sleep, its
way to run a blocking call in a worker thread), so asyncio and trio share it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sigma_core.hub import AuthHook
from sigma_core.logs import INFO, WARNING, Logger

from .tokens import JwksCache, JwtVerifier, fetch_jwks, jwt_authenticator

if TYPE_CHECKING:
    from sigma_core.api import ServerOptions

__all__ = ["ServerAuth", "server_auth"]

#: The refresh loop wakes at least this often to see whether an unknown key id brought the next
#: fetch forward.
_POLL = 1.0


class ServerAuth:
    """The hook an adapter passes to ``ServerOptions.hub_config`` and, for a JWKS URL, the
    cache its :meth:`refresh_keys` task keeps filled."""

    def __init__(self, hook: AuthHook | None, verifier: JwtVerifier | None) -> None:
        self.hook = hook
        self.verifier = verifier

    @property
    def jwks(self) -> JwksCache | None:
        return self.verifier.jwks if self.verifier is not None else None

    async def refresh_keys(self, *, clock: Callable[[], float],
                           sleep: Callable[[float], Awaitable[Any]],
                           in_thread: Callable[[Callable[[], Any]], Awaitable[Any]],
                           logger: Logger) -> None:
        """Fetch the JWKS whenever the cache says so, for ever (cancel it to stop). The fetch
        runs in a worker thread: a slow or dead endpoint never blocks the event loop; until a
        fetch succeeds, tokens are refused as retryable (close 1013), nobody is admitted."""
        cache = self.jwks
        verifier = self.verifier
        if cache is None or verifier is None:
            return
        url = verifier.config.jwks_url
        timeout = verifier.config.jwks_timeout
        assert url is not None
        while True:
            wait = cache.next_fetch_at() - clock()
            if wait > 0:
                await sleep(min(wait, _POLL))
                continue
            try:
                document = await in_thread(lambda: fetch_jwks(url, timeout))
            except OSError as exc:
                cache.failed(str(exc), clock())
                logger.log(WARNING, "JWKS fetch failed (%d in a row): %s", cache.failures,
                           exc, extra={"sigma_event": "jwks_failed"})
                continue
            cache.fetched(document, clock())
            if cache.failures:
                logger.log(WARNING, "JWKS document unusable: %s", cache.last_error,
                           extra={"sigma_event": "jwks_failed"})
            else:
                logger.log(INFO, "JWKS keys refreshed", extra={"sigma_event": "jwks_fetched"})


def server_auth(options: ServerOptions) -> ServerAuth:
    """The authentication an adapter sets up for ``options``."""
    if options.jwt is None:
        return ServerAuth(None, None)
    verifier = JwtVerifier(options.jwt)
    return ServerAuth(jwt_authenticator(verifier, then=options.jwt_then), verifier)
