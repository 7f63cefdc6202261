"""One thread that runs blocking calls in order, handed over cheaply.

A ``ThreadPoolExecutor`` with one worker costs a lock, a future and a wake-up of the event
loop per call. Here callers queue work on a ``SimpleQueue``; the thread runs whatever is
queued and hands all the results back with one wake-up, so under load many calls share one.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]


class SerialThread:
    def __init__(self, name: str):
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._started = False

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Queue the call now (not when a task gets round to it); its future has the result."""
        if not self._started:
            self._loop = asyncio.get_running_loop()
            self._started = True
            self._thread.start()
        assert self._loop is not None
        future = self._loop.create_future()
        self._jobs.put((fn, args, future))
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
            stop = False
            while job is not None:
                fn, args, future = job
                try:
                    done.append((future, fn(*args), None))
                except BaseException as exc:  # handed to the caller
                    done.append((future, None, exc))
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
            else:
                stop = True
            if done:
                assert self._loop is not None
                try:
                    self._loop.call_soon_threadsafe(_deliver, done)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return
            if stop:
                return

    async def close(self) -> None:
        """Finish the queued work, then stop the thread."""
        if self._started:
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)


def _deliver(done: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, exc in done:
        if future.cancelled():
            continue
        if exc is None:
            future.set_result(value)
        else:
            future.set_exception(exc)
