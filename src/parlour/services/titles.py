"""Conversation names: at once from the query, later (in the background) from the model."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable

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


async def name_conversation(
    hot: HotPath, model: ChatModel, conversation_id: str, query: str
) -> str | None:
    """Ask the model for a title and store it; on failure keep the current name."""
    title = await title_or_none(model, query, conversation_id)
    if title is not None:
        await hot.rename(conversation_id, title, utcnow())
    return title


async def store_title(hot: HotPath, pending: Awaitable[str | None], conversation_id: str) -> None:
    """Store a title that was still being made when its answer was saved."""
    title = await pending
    if title is not None:
        await hot.rename(conversation_id, title, utcnow())
