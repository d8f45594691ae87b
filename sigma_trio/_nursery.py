"""``async with`` for a trio object that runs in a nursery of its own (server and client)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self

import trio

__all__ = ["OwnNursery"]


class OwnNursery:
    """Enter: open a nursery and ``nursery.start(self._main)``. Exit: ``await self._end()``,
    cancel what is left, close the nursery. The body's exception is not handed to the
    nursery, so it propagates as raised rather than inside an ExceptionGroup."""

    _cm: AbstractAsyncContextManager[trio.Nursery] | None
    _nursery: trio.Nursery | None

    async def _main(self, *, task_status: Any) -> None:
        raise NotImplementedError

    async def _end(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        cm = trio.open_nursery()
        nursery = await cm.__aenter__()
        try:
            await nursery.start(self._main)
        except BaseException:
            await cm.__aexit__(None, None, None)
            raise
        self._cm = cm
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        cm, self._cm = self._cm, None
        try:
            await self._end()
        finally:
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
            if cm is not None:
                await cm.__aexit__(None, None, None)
