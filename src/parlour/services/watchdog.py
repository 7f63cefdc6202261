"""How long a generation may wait on its model: one timer per stream, not one per token;
and the wait for the next delta, which a stop, the timer or a client that left may end.

A per-token ``asyncio.timeout`` schedules and cancels a timer for every token. ``Watchdog``
keeps one timer per stream that fires only when the model has been silent for ``wait``
seconds or the run reached its execution cap; each token just records the time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

from parlour.errors import CompletionRequestError
from parlour.pipeline.events import MessageDelta
from parlour.services.tasks import TaskHandle

Fired = Literal["", "silent", "cap"]


class Watchdog:
    __slots__ = ("_loop", "_handle", "_timer", "deadline", "wait", "last", "fired")

    def __init__(self, handle: TaskHandle, seconds_left: float):
        """Watches ``handle``'s task while ``handle.waiting`` (it waits on the model)."""
        self._loop = asyncio.get_running_loop()
        self._handle = handle
        self._timer: asyncio.TimerHandle | None = None
        self.deadline = self._loop.time() + max(seconds_left, 0.0)
        self.wait = 0.0
        self.last = 0.0
        self.fired: Fired = ""

    def expect(self, wait: float) -> None:
        """The stream is about to wait on the model, for at most ``wait`` seconds."""
        self.wait = wait
        self.last = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._due(), self._check)

    def _due(self) -> float:
        return min(self.last + self.wait, self.deadline)

    def _check(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self.fired:
            return
        waiting = self._handle.waiting
        if now >= self.deadline and waiting:
            self.fired = "cap"
        elif waiting and now >= self.last + self.wait:
            self.fired = "silent"
        else:  # a token came meanwhile, or the stream is busy sending: look again later
            self._timer = self._loop.call_at(max(self._due(), now + 0.05), self._check)
            return
        task = self._handle.task
        if task is not None:
            task.cancel()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def next_delta(
    stream: AsyncIterator[MessageDelta], handle: TaskHandle, watch: Watchdog, wait: float
) -> MessageDelta | None:
    """The next delta; ``None`` when the turn is over, a stop cancelled the model call, or
    the execution cap passed (Dify ends those like a stop). Raises when the model is silent
    for longer than ``wait``."""
    handle.waiting = True
    watch.expect(wait)
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None
    except asyncio.CancelledError:
        fired, stop = watch.fired, handle.cancel_sent
        if not fired and not stop:
            raise  # the client went away: not ours to swallow
        task = asyncio.current_task()
        assert task is not None
        for _ in range(bool(fired) + bool(stop)):
            task.uncancel()
        handle.cancel_sent = False
        if fired == "silent" and not stop:
            raise CompletionRequestError("The model did not answer in time.") from None
        handle.stopped = True
        return None
    finally:
        handle.waiting = False


async def absorb_stop(handle: TaskHandle) -> None:
    """A stop that asked for a cancel which has not landed yet: take it here, not later."""
    if handle.cancel_sent:
        handle.cancel_sent = False
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
