"""The distribution's version: ``sigma_core._version``'s constant (written there once)."""

from __future__ import annotations

from sigma_core._version import VERSION

__all__ = ["VERSION"]
