"""Which build of sigma_core the tests run on: compiled with mypyc (setup.py) or pure Python.

``scripts/test.sh`` runs the whole suite on the compiled build (when the machine could build
it), then the core tests again on the pure-Python modules. ``pure_only`` marks what only the
pure-Python build does; those tests are skipped on the compiled one.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

import pytest

import sigma_core.hub

__all__ = ["COMPILED", "CORE", "pure_only"]

CORE = Path(sigma_core.__file__).resolve().parent
COMPILED = (sigma_core.hub.__file__ or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def pure_only(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(COMPILED, reason=f"compiled build: {reason}")
