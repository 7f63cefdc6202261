"""Group writes: those that arrive while one is on its way go together in the next.

A burst of chat messages otherwise costs a statement, a commit and a pooled connection each,
and waits in line for the connections. Here one write at a time is on its way per kind; every
item that arrives meanwhile joins the next, which is one statement and one commit for all of
them. An item alone goes at once (one loop turn later), so a quiet server waits for nothing.

Each item's caller waits on a future of its own (``put``), not on a task: under load every
hand-over between tasks costs a turn of the event loop, milliseconds each.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# an item's result, or the exception its caller gets
Results = list[Any]


class Pending(asyncio.Future):  # type: ignore[type-arg]
    """An item's result. Until its write takes it, a cancel drops the item; once taken, a
    cancel is refused: a task awaiting it hears of its cancel only when the write is over
    (asyncio then raises the cancel in it), so what is in the database is settled by then."""

    __slots__ = ("taken",)

    def __init__(self, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self.taken = False

    def cancel(self, msg: Any = None) -> bool:
        if self.taken:
            return False
        return super().cancel(msg=msg)


class GroupWriter(Generic[T]):
    def __init__(self, write_many: Callable[[list[T]], Awaitable[Results]], limit: int = 128):
        self._write_many = write_many
        self.limit = limit
        self._queue: list[tuple[T, Pending]] = []
        self._flight: asyncio.Task[None] | None = None

    def put(self, item: T) -> Pending:
        """Queue the item now; its future has its result once its write committed (or the
        write's failure)."""
        loop = asyncio.get_running_loop()
        fut = Pending(loop=loop)
        self._queue.append((item, fut))
        if self._flight is None or self._flight.done():
            self._flight = loop.create_task(self._drain())
            self._flight.add_done_callback(self._drained)
        return fut

    async def flush(self) -> None:
        """Wait until every item submitted so far is written (before the pool closes)."""
        while self._flight is not None and not self._flight.done():
            await asyncio.wait([self._flight])

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.limit], self._queue[self.limit :]
            batch = [entry for entry in batch if not entry[1].cancelled()]  # dropped by callers
            if not batch:
                continue
            for _, fut in batch:
                fut.taken = True
            try:
                results = await self._write_many([item for item, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            except BaseException:  # cancelled: its callers hear of it, not a hang
                for _, fut in batch:
                    fut.taken = False
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
        for _, fut in left:  # queued, so not taken: the cancel drops them
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
