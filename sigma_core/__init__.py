"""SigmaSockets' sans-IO core: bytes in, events and bytes out.

Nothing here does I/O, reads a clock or draws randomness: time arrives as ``now`` arguments and
entropy through injected objects, so every behaviour can be replayed deterministically.
"""

from __future__ import annotations

__all__: list[str] = []
