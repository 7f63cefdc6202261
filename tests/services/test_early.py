"""The first delta of a new conversation, fetched in the request's own task while its rows
are written by another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from parlour.errors import CompletionRequestError
from parlour.pipeline.events import MessageDelta
from parlour.services.early import EarlyCall, first_delta


class Turn:
    """A model turn that answers after ``delay`` seconds, and records how it ended."""

    def __init__(self, delay: float = 0.0, words: tuple[str, ...] = ("a", " b")):
        self.delay, self.words = delay, words
        self.ended = ""

    async def run(self) -> AsyncGenerator[MessageDelta, None]:
        try:
            for word in self.words:
                await asyncio.sleep(self.delay)
                yield MessageDelta(word)
            self.ended = "finished"
        except asyncio.CancelledError:
            self.ended = "cancelled"
            raise


async def write(after: float, result: object = ("inputs", [])) -> object:
    await asyncio.sleep(after)
    if isinstance(result, Exception):
        raise result
    return result


async def test_the_first_delta_comes_while_the_rows_are_written() -> None:
    turn = Turn(delay=0.01)
    rows = asyncio.ensure_future(write(0.05))
    first = await first_delta(turn.run(), 5.0, rows)
    assert first.result() == MessageDelta("a") and not rows.done()
    assert await rows == ("inputs", [])


async def test_a_failed_write_ends_the_wait_at_once() -> None:
    turn = Turn(delay=2.0)
    call = EarlyCall(turn.run(), by_task=False)
    began = time.perf_counter()
    with pytest.raises(KeyError):
        await call.open(write(0.05, KeyError("stale")), 5.0)
    assert time.perf_counter() - began < 1.0
    await call.close()
    assert turn.ended == "cancelled"


async def test_a_write_that_finds_nothing_ends_the_wait() -> None:
    turn = Turn(delay=2.0)
    call = EarlyCall(turn.run(), by_task=False)
    assert await asyncio.wait_for(call.open(write(0.05, None), 5.0), 1.0) is None
    await call.close()
    assert turn.ended == "cancelled"


async def test_a_silent_model_is_an_error_for_the_stream() -> None:
    turn = Turn(delay=2.0)
    first = await first_delta(turn.run(), 0.05, asyncio.ensure_future(write(0.0)))
    with pytest.raises(CompletionRequestError, match="in time"):
        first.result()
    assert turn.ended == "cancelled"


async def test_a_write_failing_after_the_first_delta_cancels_nothing_more() -> None:
    turn = Turn(delay=0.0)
    rows = asyncio.ensure_future(write(0.05, KeyError("late")))
    first = await first_delta(turn.run(), 5.0, rows)
    assert first.result() == MessageDelta("a")
    with pytest.raises(KeyError):
        await rows
    await asyncio.sleep(0.05)  # the task goes on uncancelled: no stray cancel is pending
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_cancel_from_outside_goes_through_and_the_write_is_awaited() -> None:
    turn = Turn(delay=2.0)
    call = EarlyCall(turn.run(), by_task=False)
    rows = write(0.2)

    async def request() -> object:
        try:
            return await call.open(rows, 5.0)
        finally:
            await call.close()  # as the chat service does before it finishes the row

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0.05)
    task.cancel()
    began = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - began >= 0.1  # the write was let end first
    assert turn.ended == "cancelled"


async def test_a_model_read_by_a_task_has_the_write_awaited_alone() -> None:
    turn = Turn(delay=0.01)
    call = EarlyCall(turn.run(), by_task=True)
    assert await call.open(write(0.0), 5.0) == ("inputs", [])
    assert call.stream is not None
    assert await call.stream.__anext__() == MessageDelta("a")
    await call.close()


async def test_a_cancel_the_model_turned_into_an_error_is_taken_back() -> None:
    async def stubborn() -> AsyncGenerator[MessageDelta, None]:
        try:
            await asyncio.sleep(2.0)
        except asyncio.CancelledError:
            raise RuntimeError("the model's own failure") from None
        yield MessageDelta("never")

    first = await first_delta(stubborn(), 5.0, asyncio.ensure_future(write(0.05, KeyError("x"))))
    with pytest.raises(RuntimeError):
        first.result()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
