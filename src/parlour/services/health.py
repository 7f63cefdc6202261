"""What a load balancer asks: can this worker reach its database and Redis?"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour import __version__
from parlour.storage.db import error_types, unavailable

__all__ = ["check", "database_error_types", "database_unavailable"]

database_error_types = error_types
database_unavailable = unavailable


async def check(
    sessions: async_sessionmaker[AsyncSession], redis: Any, timeout: float = 2.0
) -> tuple[bool, dict[str, Any]]:
    report: dict[str, Any] = {"version": __version__}
    try:
        async with asyncio.timeout(timeout), sessions() as session:
            await session.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"unreachable: {type(exc).__name__}"
    if redis is None:
        report["redis"] = "not configured"
    else:
        try:
            async with asyncio.timeout(timeout):
                await redis.ping()
            report["redis"] = "ok"
        except Exception as exc:
            report["redis"] = f"unreachable: {type(exc).__name__}"
    healthy = report["database"] == "ok" and report["redis"] in ("ok", "not configured")
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report
