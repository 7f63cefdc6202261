"""Group writes: those that arrive while one is on its way go together in the next.

A burst of chat messages otherwise costs a statement, a commit and a pooled connection each,
and waits in line for the connections. Here one write at a time is on its way per kind; every
item that arrives meanwhile joins the next, which is one statement and one commit for all of
them. An item alone goes at once (one loop turn later), so a quiet server waits for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

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
        if self._flight is None:
            self._flight = loop.create_task(self._drain())
        fut = entry[1]
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            if entry in self._queue:  # not taken yet: never written
                self._queue.remove(entry)
                fut.cancel()
            else:
                await asyncio.wait([fut])
                if not fut.cancelled():
                    fut.exception()  # retrieved: the caller is gone
            raise

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[Any]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.limit], self._queue[self.limit :]
                try:
                    results = await self._write_many([item for item, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, fut), result in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
                batch = []
        except BaseException as exc:  # cancelled (shutdown): no caller waits for ever
            for _, fut in batch + self._queue:
                if fut.done():
                    continue
                if isinstance(exc, Exception):
                    fut.set_exception(exc)
                else:
                    fut.cancel()
            self._queue = []
            raise
        finally:
            self._flight = None
