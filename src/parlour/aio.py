"""asyncio helpers that more than one layer needs."""

from __future__ import annotations

import asyncio
from typing import Any


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
