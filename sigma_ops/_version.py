"""The distribution's version, read once from its metadata (pyproject.toml is the one place
it is written)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION = version("sigmasockets")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"
