"""The system's entropy for the core: resume tokens and session ids must be unguessable."""

from __future__ import annotations

import random
import secrets

__all__ = ["SystemEntropy"]


class SystemEntropy:
    """:class:`sigma_core.entropy.Entropy` backed by the OS CSPRNG."""

    __slots__ = ("_rng",)

    def __init__(self) -> None:
        self._rng = random.SystemRandom()

    def token_bytes(self, n: int) -> bytes:
        """``n`` bytes from :func:`secrets.token_bytes`."""
        return secrets.token_bytes(n)

    def random(self) -> float:
        """Uniform in [0, 1) from :class:`random.SystemRandom` (backoff jitter)."""
        return self._rng.random()
