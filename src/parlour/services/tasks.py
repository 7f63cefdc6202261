"""Running generations by task id, so that their owner can stop them.

``LocalTaskRegistry`` serves one process; a Redis-backed registry with the same interface
serves several workers.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class TaskHandle:
    """One running generation. ``request_stop`` ends it at the next token, cancelling the model
    call if the generation is waiting on it."""

    __slots__ = ("task_id", "owner", "stopped", "waiting", "task", "cancel_sent")

    def __init__(self, task_id: str, owner: str):
        self.task_id = task_id
        self.owner = owner
        self.stopped = False
        self.waiting = False
        self.task: asyncio.Task[object] | None = None
        self.cancel_sent = False

    def request_stop(self) -> None:
        self.stopped = True
        if self.waiting and self.task is not None and not self.cancel_sent:
            self.cancel_sent = True
            self.task.cancel()


class TaskRegistry(Protocol):
    async def register(self, task_id: str, owner: str) -> TaskHandle: ...

    async def stop(self, task_id: str, owner: str) -> None: ...

    async def unregister(self, handle: TaskHandle) -> None: ...

    async def close(self) -> None: ...


class LocalTaskRegistry:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskHandle] = {}

    async def register(self, task_id: str, owner: str) -> TaskHandle:
        handle = TaskHandle(task_id, owner)
        self._tasks[task_id] = handle
        return handle

    async def stop(self, task_id: str, owner: str) -> None:
        handle = self._tasks.get(task_id)
        if handle is not None and handle.owner == owner:
            handle.request_stop()

    async def unregister(self, handle: TaskHandle) -> None:
        if self._tasks.get(handle.task_id) is handle:
            del self._tasks[handle.task_id]

    async def close(self) -> None:
        self._tasks.clear()
