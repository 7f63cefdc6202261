"""Request limits: active requests per app (streams included) and requests per minute per end
user. Counted in Redis across workers when it is configured, in-process otherwise.

With Redis down the limits fail open (a warning is logged): a limit must not take the
service down with it.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Protocol

from parlour.errors import TooManyRequests

log = logging.getLogger("parlour.limits")

# Entries older than this are a crashed worker's leftovers (Dify's execution cap, §1.9).
STALE_AFTER = 1200.0

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def too_many_active(app_id: str, limit: int) -> TooManyRequests:
    return TooManyRequests(
        "Too many requests. Please try again later. The current maximum concurrent requests "
        f"allowed for {app_id} is {limit}."
    )


def too_many_per_minute(limit: int) -> TooManyRequests:
    return TooManyRequests(
        f"Too many requests. Please try again later. This user may send {limit} requests "
        "per minute."
    )


class Limiter(Protocol):
    async def acquire(self, app_id: str, limit: int) -> str | None: ...

    async def release(self, app_id: str, slot: str | None) -> None: ...

    async def hit(self, app_id: str, end_user_id: str, per_minute: int) -> None: ...


class LocalLimiter:
    def __init__(self) -> None:
        self._active: dict[str, set[str]] = {}
        self._minutes: dict[tuple[str, str], tuple[int, int]] = {}

    async def acquire(self, app_id: str, limit: int) -> str | None:
        if limit <= 0:
            return None
        slots = self._active.setdefault(app_id, set())
        if len(slots) >= limit:
            raise too_many_active(app_id, limit)
        slot = uuid.uuid4().hex
        slots.add(slot)
        return slot

    async def release(self, app_id: str, slot: str | None) -> None:
        if slot is not None:
            self._active.get(app_id, set()).discard(slot)

    async def hit(self, app_id: str, end_user_id: str, per_minute: int) -> None:
        if per_minute <= 0:
            return
        minute = int(time.time() // 60)
        seen_minute, count = self._minutes.get((app_id, end_user_id), (minute, 0))
        count = count + 1 if seen_minute == minute else 1
        if len(self._minutes) > 100_000:
            self._minutes.clear()
        self._minutes[(app_id, end_user_id)] = (minute, count)
        if count > per_minute:
            raise too_many_per_minute(per_minute)


class RedisLimiter:
    def __init__(self, redis: Any, prefix: str = "parlour"):
        self.redis = redis
        self.prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(self, app_id: str, limit: int) -> str | None:
        if limit <= 0:
            return None
        slot = uuid.uuid4().hex
        now = time.time()
        key = f"{self.prefix}:active:{app_id}"
        try:
            ok = await self._acquire(
                keys=[key], args=[now - STALE_AFTER, now, limit, slot, int(STALE_AFTER)]
            )
        except Exception as exc:
            log.warning("active-request limit not enforced (Redis unavailable): %s", exc)
            return None
        if not ok:
            raise too_many_active(app_id, limit)
        return slot

    async def release(self, app_id: str, slot: str | None) -> None:
        if slot is None:
            return
        try:
            await self.redis.zrem(f"{self.prefix}:active:{app_id}", slot)
        except Exception as exc:  # the entry expires by itself
            log.warning("could not release an active-request slot: %s", exc)

    async def hit(self, app_id: str, end_user_id: str, per_minute: int) -> None:
        if per_minute <= 0:
            return
        key = f"{self.prefix}:rpm:{app_id}:{end_user_id}:{int(time.time() // 60)}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
        except Exception as exc:
            log.warning("per-user limit not enforced (Redis unavailable): %s", exc)
            return
        if int(count) > per_minute:
            raise too_many_per_minute(per_minute)
