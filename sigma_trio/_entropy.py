"""The operating system's randomness, injected into the core (which draws none of its own)."""

from __future__ import annotations

import random
import secrets

__all__ = ["SystemEntropy"]


class SystemEntropy:
    """:class:`sigma_core.entropy.Entropy` backed by ``secrets`` and ``random.SystemRandom``:
    unguessable resume tokens and session ids, jitter nobody can predict."""

    __slots__ = ("_random",)

    def __init__(self) -> None:
        self._random = random.SystemRandom()

    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)

    def random(self) -> float:
        return self._random.random()
