"""Injected randomness: the core draws no entropy of its own.

Adapters pass :func:`system_entropy` (``secrets`` / ``random.SystemRandom``); tests pass
:class:`SeededEntropy` for reproducible runs. Resume tokens are only as unguessable as the source
they come from: never use a seeded source in production.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Entropy", "SeededEntropy"]


class Entropy(Protocol):
    """Where the core gets identifiers, tokens, epochs and jitter."""

    def token_bytes(self, n: int) -> bytes:
        """``n`` unpredictable bytes (resume tokens, session ids, epochs)."""
        ...

    def random(self) -> float:
        """A float uniformly distributed in [0, 1) (backoff jitter)."""
        ...


class SeededEntropy:
    """A deterministic, *guessable* source for tests and simulations (xorshift64*)."""

    __slots__ = ("_state",)

    def __init__(self, seed: int = 1) -> None:
        self._state = (seed * 0x9E3779B97F4A7C15 + 1) & 0xFFFFFFFFFFFFFFFF or 1

    def _next(self) -> int:
        x = self._state
        x ^= x >> 12
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 27
        self._state = x
        return (x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def token_bytes(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += self._next().to_bytes(8, "little")
        return bytes(out[:n])

    def random(self) -> float:
        return (self._next() >> 11) / float(1 << 53)
