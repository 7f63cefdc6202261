"""Messages of a conversation: history pages, feedback, suggested follow-up questions.

History pages scroll backwards with ``first_id`` and come out oldest first; the cursor is
(created_at, id), so messages sharing a timestamp are never skipped (Dify's strict
``created_at <`` drops them). A message still being generated shows ``status: "normal"`` and
``answer: ""`` (as Dify); a stopped one shows ``normal`` with the partial answer it kept (Dify
has no ``stopped`` status on the wire).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.errors import BadRequest, FirstMessageNotExists, InvalidParam, MessageNotExists
from parlour.providers.base import ChatMessage, CompletionParams, complete
from parlour.providers.registry import ModelRegistry
from parlour.services.apps import AppContext
from parlour.services.conversations import keyset, owned_conversation
from parlour.services.end_users import EndUsers
from parlour.services.files import files_of_messages
from parlour.services.knowledge import listed_citations
from parlour.storage.db import insert_ignoring_duplicates
from parlour.storage.models import Message, MessageFeedback, epoch, utcnow

log = logging.getLogger("parlour.messages")
ROOT_PARENT = "00000000-0000-0000-0000-000000000000"
SUGGEST_PROMPT = (
    "Predict the three questions the user is most likely to ask next, each under 20 "
    "characters, in the same language as the assistant's latest answer. Reply with a JSON "
    'array of strings only, for example ["question1","question2","question3"].'
)
_ARRAY = re.compile(r"\[.*?\]", re.S)


def message_dict(
    row: Message, rating: str | None, files: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    running = row.status == "running"
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "parent_message_id": ROOT_PARENT,
        "inputs": row.inputs or {},
        "query": row.query,
        "answer": "" if running else row.answer,
        "message_files": files or [],
        "feedback": {"rating": rating} if rating else None,
        "retriever_resources": listed_citations(
            row.retriever_resources, row.id, epoch(row.created_at)
        ),
        "agent_thoughts": [],
        "created_at": epoch(row.created_at),
        "status": "error" if row.status == "error" else "normal",
        "error": row.error if row.status == "error" else None,
        "extra_contents": [],
    }


def feedback_dict(row: MessageFeedback) -> dict[str, Any]:
    return {
        "id": row.id,
        "app_id": row.app_id,
        "conversation_id": row.conversation_id,
        "message_id": row.message_id,
        "rating": row.rating,
        "content": row.content,
        "from_source": row.from_source,
        "from_end_user_id": row.from_end_user_id,
        "from_account_id": row.from_account_id,
        "created_at": row.created_at.isoformat(timespec="seconds"),
        "updated_at": row.updated_at.isoformat(timespec="seconds"),
    }


def parse_questions(raw: str) -> list[str]:
    """The first JSON array in the model's answer; only strings, at most three."""
    for match in _ARRAY.finditer(raw):
        try:
            items = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(items, list):
            return [q.strip() for q in items if isinstance(q, str) and q.strip()][:3]
    return []


async def owned_message(
    session: AsyncSession, app_id: str, end_user_id: str, message_id: str
) -> Message:
    row = await session.scalar(
        select(Message).where(
            Message.id == message_id, Message.app_id == app_id, Message.end_user_id == end_user_id
        )
    )
    if row is None:
        raise MessageNotExists()
    return row


class Messages:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        end_users: EndUsers,
    ):
        self.sessions = sessions
        self.models = models
        self.end_users = end_users

    async def history(
        self,
        app: AppContext,
        user: str | None,
        conversation_id: str | None,
        first_id: str | None,
        limit: int,
    ) -> dict[str, Any]:
        end_user_id = await self.end_users.resolve(app.id, user)
        if not conversation_id:
            return {"limit": limit, "has_more": False, "data": []}
        async with self.sessions() as session:
            await owned_conversation(session, app.id, end_user_id, conversation_id)
            stmt = select(Message).where(Message.conversation_id == conversation_id)
            if first_id:
                first = await session.scalar(
                    select(Message).where(
                        Message.id == first_id, Message.conversation_id == conversation_id
                    )
                )
                if first is None:
                    raise FirstMessageNotExists()
                stmt = stmt.where(
                    keyset(Message.created_at, Message.id, first.created_at, first.id, True)
                )
            stmt = stmt.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)
            rows = list((await session.scalars(stmt)).all())
            has_more = len(rows) > limit
            rows = rows[:limit]
            ratings = await self._ratings(session, [r.id for r in rows])
            files = await files_of_messages(session, [r.id for r in rows])
        rows.reverse()
        return {
            "limit": limit,
            "has_more": has_more,
            "data": [message_dict(r, ratings.get(r.id), files.get(r.id)) for r in rows],
        }

    async def _ratings(self, session: AsyncSession, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        found = await session.execute(
            select(MessageFeedback.message_id, MessageFeedback.rating).where(
                MessageFeedback.message_id.in_(ids), MessageFeedback.from_source == "user"
            )
        )
        return {m: r for m, r in found.all()}

    async def feedback(
        self,
        app: AppContext,
        user: str,
        message_id: str,
        rating: str | None,
        content: str | None,
    ) -> None:
        """Create, update or (rating null) revoke the end user's feedback on a message.

        Unlike Dify, an update that carries no ``content`` keeps the stored one."""
        end_user_id = await self.end_users.resolve(app.id, user)
        now = utcnow()
        async with self.sessions.begin() as session:
            message = await owned_message(session, app.id, end_user_id, message_id)
            mine = (
                MessageFeedback.message_id == message_id,
                MessageFeedback.from_source == "user",
                MessageFeedback.from_end_user_id == end_user_id,
            )
            existing = await session.scalar(select(MessageFeedback.id).where(*mine))
            if rating is None:
                if existing is None:
                    raise InvalidParam("rating cannot be None when feedback not exists")
                await session.execute(delete(MessageFeedback).where(*mine))
                return
            if existing is None:
                result = await session.execute(
                    insert_ignoring_duplicates(session, MessageFeedback).values(
                        id=str(uuid.uuid4()), app_id=app.id,
                        conversation_id=message.conversation_id, message_id=message_id,
                        rating=rating, content=content, from_source="user",
                        from_end_user_id=end_user_id, created_at=now, updated_at=now,
                    )
                )
                if getattr(result, "rowcount", 1):
                    return
            values: dict[str, Any] = {"rating": rating, "updated_at": now}
            if content is not None:
                values["content"] = content
            await session.execute(update(MessageFeedback).where(*mine).values(**values))

    async def app_feedbacks(self, app: AppContext, page: int, limit: int) -> dict[str, Any]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(MessageFeedback)
                .where(MessageFeedback.app_id == app.id)
                .order_by(MessageFeedback.created_at.desc(), MessageFeedback.id.desc())
                .offset((page - 1) * limit)
                .limit(limit)
            )
            return {"data": [feedback_dict(r) for r in rows.all()]}

    async def suggested(self, app: AppContext, user: str, message_id: str) -> list[str]:
        """Up to three follow-up questions; a model failure gives ``[]``, never an error."""
        end_user_id = await self.end_users.resolve(app.id, user)
        async with self.sessions() as session:
            message = await owned_message(session, app.id, end_user_id, message_id)
            if not app.config.suggested_questions_after_answer.enabled:
                raise BadRequest("Suggested Questions Is Disabled.")
            recent = await session.execute(
                select(Message.query, Message.answer)
                .where(
                    Message.conversation_id == message.conversation_id,
                    keyset(Message.created_at, Message.id, message.created_at, message.id, True)
                    | (Message.id == message.id),
                )
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(3)
            )
            turns = list(reversed(recent.all()))
        transcript = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in turns)
        prompt = [ChatMessage("system", SUGGEST_PROMPT), ChatMessage("user", transcript)]
        m = app.config.model
        try:
            model = self.models.get(m.spec, base_url=m.base_url, api_key=m.api_key)
            raw = await complete(model, prompt, CompletionParams(temperature=0, max_tokens=256))
        except Exception as exc:  # suggestions are best effort
            log.info("suggested questions failed: %s", exc)
            return []
        return parse_questions(raw)
