"""Which worker runs a generation, so that a restarted worker can tell a crashed run (its
message stays ``running``) from one still streaming on a live worker."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.storage.models import Message

log = logging.getLogger("parlour.workers")
HEARTBEAT_EVERY = 10.0
HEARTBEAT_TTL = 30


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Workers:
    """Liveness of workers: a process check on this host, Redis heartbeats across hosts."""

    def __init__(self, redis: Any = None):
        self.redis = redis
        self.me = worker_id()
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.redis is not None:
            self._beat = asyncio.get_running_loop().create_task(self._heartbeat())

    async def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
            try:
                await self.redis.delete(f"parlour:worker:{self.me}")
            except Exception as exc:  # it expires by itself
                log.debug("heartbeat key left to expire: %s", exc)

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.redis.set(f"parlour:worker:{self.me}", "1", ex=HEARTBEAT_TTL)
            except Exception as exc:
                log.warning("worker heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def alive(self, worker: str | None) -> bool:
        if not worker:
            return False
        if worker == self.me:
            return True
        host, _, pid = worker.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            if self.redis is None:
                return True
        if self.redis is None:
            return False
        try:
            return bool(await self.redis.exists(f"parlour:worker:{worker}"))
        except Exception as exc:
            log.warning("cannot check worker %s (Redis): %s; assuming alive", worker, exc)
            return True


async def recover_interrupted(
    sessions: async_sessionmaker[AsyncSession], workers: Workers | None = None
) -> int:
    """Mark messages left ``running`` by workers that are gone as failed (run at start-up)."""
    workers = workers or Workers()
    async with sessions() as session:
        running = (
            await session.scalars(
                select(Message.worker).where(Message.status == "running").distinct()
            )
        ).all()
    dead = [w for w in running if not await workers.alive(w)]
    if not dead:
        return 0
    stale: ColumnElement[bool] = Message.worker.in_([w for w in dead if w is not None])
    if None in dead:
        stale = stale | Message.worker.is_(None)
    async with sessions.begin() as session:
        result = await session.execute(
            update(Message)
            .where(Message.status == "running", stale)
            .values(status="error", error="Interrupted: the server stopped during generation.")
        )
    return int(getattr(result, "rowcount", 0) or 0)
