"""A new conversation's model call, started while its rows are written.

Its prompt needs nothing from those rows, so nothing waits for them. For a model known to
answer quickly, the first delta is fetched in the request's own task while a task writes the
rows: a task of its own for the model call would start it one turn of the event loop later,
and hand its delta back one turn later again (under load, each turn is milliseconds). The
response then begins with that delta. Any other model is read by a task, so that the
response and its pings begin as soon as the rows are written. A failed write cancels the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, TypeVar

from parlour.errors import CompletionRequestError
from parlour.pipeline.events import MessageDelta
from parlour.pipeline.turn import EarlyStream

T = TypeVar("T")


class EarlyCall:
    """The model call of a turn whose rows are being written."""

    def __init__(self, turn: AsyncGenerator[MessageDelta, None], by_task: bool):
        """``by_task``: a model whose first token may be far off (a local queue, or one not
        known to answer quickly) is read by a task, so that the response, its pings and the
        watch for a client that leaves start meanwhile."""
        self.turn = turn
        self.stream: EarlyStream | None = None
        self._rows: asyncio.Future[Any] | None = None
        if by_task:
            self.stream = EarlyStream(turn)

    async def open(self, write: Awaitable[T], wait: float) -> T:
        """The rows' write, awaited while the model is asked (for at most ``wait`` seconds
        until its first delta)."""
        if self.stream is not None:
            return await write
        rows: asyncio.Future[T] = asyncio.ensure_future(write)
        self._rows = rows
        self.stream = EarlyStream(self.turn, await first_delta(self.turn, wait, rows))
        return await rows

    async def close(self) -> None:
        """The turn failed before it began: cancel the model call, and let the write end
        (only then may its row be finished)."""
        if self.stream is not None:
            await self.stream.aclose()
        else:
            await self.turn.aclose()
        if self._rows is not None:
            await settled(self._rows)


async def first_delta(
    stream: AsyncIterator[MessageDelta], wait: float, rows: asyncio.Future[Any]
) -> asyncio.Future[MessageDelta]:
    """The stream's first delta (or what it raised), fetched in the caller's own task while
    ``rows`` are written. A write that fails (raises, or finds nothing) ends the wait at once;
    the caller then sees the write's outcome. The model may take ``wait`` seconds; past that,
    the delta is a ``CompletionRequestError``."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    first: asyncio.Future[MessageDelta] = loop.create_future()
    why = ""
    waiting, seen = True, False

    def end(reason: str) -> None:
        nonlocal why
        if waiting and not why:
            why = reason
            task.cancel()

    def written(done: asyncio.Future[Any]) -> None:
        if done.cancelled() or done.exception() is not None or done.result() is None:
            end("rows")

    timer = loop.call_later(wait, end, "silent")
    rows.add_done_callback(written)
    try:
        first.set_result(await stream.__anext__())
    except asyncio.CancelledError:
        seen = True
        if not why or task.uncancel() > 0:
            raise  # not (only) ours: the client went away, or the server is stopping
        if why == "silent":
            first.set_exception(CompletionRequestError("The model did not answer in time."))
        else:
            first.cancel()  # the rows' outcome is the answer; the stream is closed by the caller
    except Exception as exc:  # the model's failure (or its end): the stream's first event
        first.set_exception(exc)
    finally:
        waiting = False
        timer.cancel()
        rows.remove_done_callback(written)
        if why and not seen:  # the model turned our cancel into something else: take it back
            task.uncancel()
    return first


async def settled(work: asyncio.Future[Any]) -> None:
    """Wait until ``work`` is done, through cancels (the last is raised again after), and
    retrieve its failure: the caller wants it over, not its result."""
    cancelled = False
    while not work.done():
        try:
            await asyncio.wait([work])
        except asyncio.CancelledError:
            cancelled = True
    if not work.cancelled():
        work.exception()
    if cancelled:
        raise asyncio.CancelledError
