"""Running generations by task id, so that their owner can stop them.

``LocalTaskRegistry`` serves one process; a Redis-backed registry with the same interface
serves several workers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

log = logging.getLogger("parlour.tasks")


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

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalTaskRegistry:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskHandle] = {}

    async def start(self) -> None:
        return None

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


class RedisTaskRegistry(LocalTaskRegistry):
    """Several workers: a stop that arrives at a worker not running the task is published to
    every worker, and the worker running it checks the owner and stops it. Nothing is written
    to Redis per task (a stop is rare; a generation is not), so a task costs no Redis round
    trip. With Redis down, stops still work for tasks of the worker that receives them (a
    warning is logged)."""

    CHANNEL = "parlour:stop"

    def __init__(self, redis: Any):
        super().__init__()
        self.redis = redis
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._stop_local(_text(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stop channel lost (%s); reconnecting", exc)
                await asyncio.sleep(1.0)

    async def _stop_local(self, data: str) -> None:
        task_id, _, owner = data.partition(" ")
        await super().stop(task_id, owner)

    async def stop(self, task_id: str, owner: str) -> None:
        if task_id in self._tasks:
            await super().stop(task_id, owner)
            return
        try:
            await self.redis.publish(self.CHANNEL, f"{task_id} {owner}")
        except Exception as exc:
            log.warning("stop of %s not sent to other workers: %s", task_id, exc)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await super().close()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)
