"""Runnable examples (``python -m examples.chat``)."""
