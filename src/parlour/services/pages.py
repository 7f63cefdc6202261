"""Dify's paged lists (``?page=&limit=&keyword=``): lenient numbers, a LIKE keyword, one page
of rows and the total."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession


def lenient_int(value: str | None, default: int) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return default


def paging(page: str | None, limit: str | None) -> tuple[int, int]:
    """Dify's lenient paging: bad numbers fall back to the defaults; limit capped at 100."""
    number = min(max(lenient_int(page, 1), 1), 1_000_000)
    size = lenient_int(limit, 20)
    return number, 20 if size < 1 else min(size, 100)


def like(keyword: str) -> str:
    """A LIKE pattern (escape ``\\``) matching the lower-cased keyword anywhere."""
    escaped = keyword.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def fetch_page(
    session: AsyncSession,
    model: Any,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    page: int,
    limit: int,
) -> tuple[list[Any], int]:
    """One page of ``model``'s rows matching ``where``, and how many match in all."""
    total = await session.scalar(select(func.count()).select_from(model).where(*where))
    rows = await session.scalars(
        select(model).where(*where).order_by(*order_by).offset((page - 1) * limit).limit(limit)
    )
    return list(rows.all()), int(total or 0)


def page_of(data: list[dict[str, Any]], page: int, limit: int, total: int) -> dict[str, Any]:
    return {
        "data": data,
        "has_more": page * limit < total,
        "limit": limit,
        "total": total,
        "page": page,
    }
