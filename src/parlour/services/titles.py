"""Conversation names: at once from the query, later (in the background) from the model."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from parlour.providers.base import ChatMessage, ChatModel, CompletionParams, complete
from parlour.storage.hotpath import HotPath
from parlour.storage.models import utcnow

log = logging.getLogger("parlour.titles")

TITLE_PROMPT = (
    "Write a short title (at most 8 words) for a conversation that begins with the user's "
    "message below, in the language of that message. Reply with the title only, no quotes."
)


def initial_name(query: str) -> str:
    """Dify's first name: the query, cut to 20 characters plus an ellipsis."""
    return query if len(query) <= 20 else query[:20] + "…"


def clean_title(raw: str, query: str) -> str:
    text = raw.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
            text = str(obj.get("Your Output") or obj.get("title") or "")
        except (ValueError, AttributeError):
            pass
    text = text.splitlines()[0].strip() if text else ""
    text = text.strip("\"'“”*# ").removeprefix("Title:").strip()
    if not text:
        return initial_name(query)
    return text if len(text) <= 75 else text[:75] + "..."


async def generate_title(model: ChatModel, query: str) -> str:
    if len(query) > 2000:
        query = query[:300] + "...[TRUNCATED]..." + query[-300:]
    messages = [ChatMessage("system", TITLE_PROMPT), ChatMessage("user", query.replace("\n", " "))]
    raw = await complete(model, messages, CompletionParams(temperature=0.2, max_tokens=32))
    return clean_title(raw, query)


async def title_or_none(model: ChatModel, query: str, conversation_id: str) -> str | None:
    """The model's title, or None when it could not make one (a title is best effort: never
    fail the conversation for it)."""
    try:
        return await generate_title(model, query)
    except Exception as exc:
        log.info("title generation failed for %s: %s", conversation_id, exc)
        return None


class TitleWriter:
    """Titles that come after their answer was saved, stored together: all that arrive within
    ``window`` seconds go in one write. A title is best effort, and a burst of new
    conversations should not cost a database round trip each for its names."""

    def __init__(self, hot: HotPath, spawn: Callable[[Coroutine[Any, Any, Any]], Any],
                 window: float = 0.05):  # fmt: skip
        self.hot = hot
        self.spawn = spawn
        self.window = window
        self._pending: dict[str, tuple[str, datetime]] = {}
        self._flushing = False

    def put(self, conversation_id: str, name: str) -> None:
        self._pending[conversation_id] = (name, utcnow())
        if not self._flushing:
            self._flushing = True
            self.spawn(self._flush())

    def put_when_done(self, conversation_id: str, title: asyncio.Future[str | None]) -> None:
        """Store the title a running call makes, when it has made it."""

        def done(fut: asyncio.Future[str | None]) -> None:
            if not fut.cancelled() and fut.exception() is None:
                name = fut.result()
                if name is not None:
                    self.put(conversation_id, name)

        title.add_done_callback(done)

    async def _flush(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(self.window)
                batch, self._pending = self._pending, {}
                names = [(cid, name, at) for cid, (name, at) in batch.items()]
                try:
                    await self.hot.rename_many(names)
                except Exception as exc:
                    log.warning("could not store %d conversation titles: %s", len(names), exc)
        finally:
            self._flushing = False
