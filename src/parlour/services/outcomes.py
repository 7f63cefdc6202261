"""A turn's outcome (answer, usage, status, title) saved; if the database is down just then,
saved in the background once it is back, so an accepted answer is not lost."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from parlour.storage.db import unavailable
from parlour.storage.hotpath import HotPath, Outcome

log = logging.getLogger("parlour.chat")


class Outcomes:
    def __init__(self, hot: HotPath, spawn: Callable[[Coroutine[Any, Any, Any]], Any]):
        self.hot = hot
        self.spawn = spawn

    async def save(self, outcome: Outcome) -> None:
        try:
            await self.hot.close_turn(outcome)
        except Exception as exc:
            if not unavailable(exc):
                log.exception("could not save message %s", outcome.message_id)
                return
            log.warning("database unavailable: saving message %s later", outcome.message_id)
            self.spawn(self._save_later(outcome))

    async def _save_later(self, outcome: Outcome, give_up: float = 300.0) -> None:
        """Save an outcome once the database is back (it restarted mid-answer)."""
        deadline = time.monotonic() + give_up
        delay = 0.25
        while True:
            await asyncio.sleep(delay)
            try:
                await self.hot.close_turn(outcome)
                log.info("message %s saved after the database came back", outcome.message_id)
                return
            except Exception as exc:
                if not unavailable(exc) or time.monotonic() > deadline:
                    log.error("could not save message %s: %r", outcome.message_id, exc)
                    return
            delay = min(delay * 2, 5.0)
