"""Servers under test, one script each (run as files by bench/run.py, not imported)."""
