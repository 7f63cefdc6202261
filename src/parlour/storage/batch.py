"""Group writes: those that arrive while one is on its way go together in the next.

A burst of chat messages otherwise costs a statement, a commit and a pooled connection each,
and waits in line for the connections. Here one write at a time is on its way per kind; every
item that arrives meanwhile joins the next, which is one statement and one commit for all of
them. An item alone goes at once (one loop turn later), so a quiet server waits for nothing.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from parlour.aio import settled

T = TypeVar("T")

# an item's result, or the exception its caller gets
Results = list[Any]


class GroupWriter(Generic[T]):
    def __init__(self, write_many: Callable[[list[T]], Awaitable[Results]], limit: int = 128):
        self._write_many = write_many
        self.limit = limit
        self._queue: list[tuple[T, asyncio.Future[Any]]] = []
        self._flight: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> Any:
        """The item's result, once its write committed (or failed). A caller cancelled while
        its item is being written hears of the cancel only once the write is over: written or
        not, what is in the database is settled when the cancel reaches it."""
        loop = asyncio.get_running_loop()
        entry = (item, loop.create_future())
        self._queue.append(entry)
        if self._flight is None or self._flight.done():
            self._flight = loop.create_task(self._drain())
            self._flight.add_done_callback(self._drained)
        fut = entry[1]
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            if entry in self._queue:  # not taken yet: never written
                self._queue.remove(entry)
                fut.cancel()
                raise
            await settled(fut)  # a second cancel does not cut this short
            raise

    async def flush(self) -> None:
        """Wait until every item submitted so far is written (before the pool closes)."""
        while self._flight is not None and not self._flight.done():
            await asyncio.wait([self._flight])

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.limit], self._queue[self.limit :]
            try:
                results = await self._write_many([item for item, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            except BaseException:  # cancelled: its callers hear of it, not a hang
                self._queue = batch + self._queue
                raise
            seen: set[int] = set()
            for (_, fut), result in zip(batch, results, strict=True):
                if fut.done():
                    continue
                if isinstance(result, BaseException):
                    fut.set_exception(_own(result, seen))
                else:
                    fut.set_result(result)

    def _drained(self, task: asyncio.Task[None]) -> None:
        """A drain that was cancelled (even before it started) leaves no caller waiting."""
        if task is self._flight:
            self._flight = None
        if not task.cancelled() and task.exception() is None:
            return
        left, self._queue = self._queue, []
        for _, fut in left:
            if not fut.done():
                fut.cancel()


def _own(exc: BaseException, seen: set[int]) -> BaseException:
    """The exception for one caller: the first gets it, the others a copy each (one object
    raised in many tasks would carry all their tracebacks)."""
    if id(exc) not in seen:
        seen.add(id(exc))
        return exc
    try:
        return copy.copy(exc)
    except Exception:
        return exc
