"""Conversations of one end user: list, delete, rename, and their variables.

Every lookup is scoped to (app, end user): another user's or another app's conversation is
indistinguishable from a missing one. Lists page on (sort field, id), so rows that share a
timestamp are neither skipped nor repeated (Dify orders by the timestamp alone and drops them).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import delete, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.errors import (
    ConversationNotExists,
    ConversationVariableNotExists,
    InvalidParam,
    LastConversationNotExists,
)
from parlour.providers.registry import ModelRegistry
from parlour.services import variables as variables_service
from parlour.services.apps import AppContext
from parlour.services.end_users import EndUsers
from parlour.services.titles import generate_title
from parlour.storage.models import (
    Conversation,
    ConversationVariable,
    Message,
    MessageFeedback,
    epoch,
    utcnow,
)

log = logging.getLogger("parlour.conversations")
SORT_KEYS = ("created_at", "-created_at", "updated_at", "-updated_at")
NAME_MAX = 255
VARIABLE_NAME = re.compile(r"^[\w.\-]{1,255}$")


def conversation_dict(row: Conversation) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "inputs": row.inputs or {},
        "status": row.status,
        "introduction": row.introduction or "",
        "created_at": epoch(row.created_at),
        "updated_at": epoch(row.updated_at),
    }


def keyset(column: Any, id_column: Any, value: Any, row_id: str, descending: bool) -> Any:
    """Rows strictly after (value, row_id) in the given order: the tie-breaker is the id. A row
    comparison, so both databases seek the (…, column, id) index to the cursor instead of
    filtering every row before it."""
    row, cursor = tuple_(column, id_column), tuple_(literal(value), literal(row_id))
    return row < cursor if descending else row > cursor


async def owned_conversation(
    session: AsyncSession, app_id: str, end_user_id: str, conversation_id: str
) -> Conversation:
    row = await session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id,
            Conversation.app_id == app_id,
            Conversation.end_user_id == end_user_id,
        )
    )
    if row is None:
        raise ConversationNotExists()
    return row


class Conversations:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        end_users: EndUsers,
    ):
        self.sessions = sessions
        self.models = models
        self.end_users = end_users

    async def page(
        self, app: AppContext, user: str | None, last_id: str | None, limit: int, sort_by: str
    ) -> dict[str, Any]:
        end_user_id = await self.end_users.resolve(app.id, user)
        field = sort_by.lstrip("-")
        descending = sort_by.startswith("-")
        column = getattr(Conversation, field)
        stmt = select(Conversation).where(
            Conversation.app_id == app.id, Conversation.end_user_id == end_user_id
        )
        async with self.sessions() as session:
            if last_id:
                try:
                    cursor = await owned_conversation(session, app.id, end_user_id, last_id)
                except ConversationNotExists:
                    raise LastConversationNotExists() from None
                stmt = stmt.where(
                    keyset(column, Conversation.id, getattr(cursor, field), cursor.id, descending)
                )
            order = (column.desc(), Conversation.id.desc()) if descending else (
                column.asc(), Conversation.id.asc()
            )
            rows = list((await session.scalars(stmt.order_by(*order).limit(limit + 1))).all())
        return {
            "limit": limit,
            "has_more": len(rows) > limit,
            "data": [conversation_dict(r) for r in rows[:limit]],
        }

    async def delete(self, app: AppContext, user: str | None, conversation_id: str) -> None:
        """The conversation, its messages, feedback and variables: gone at once."""
        end_user_id = await self.end_users.resolve(app.id, user)
        async with self.sessions.begin() as session:
            await owned_conversation(session, app.id, end_user_id, conversation_id)
            for table in (MessageFeedback, ConversationVariable, Message):
                await session.execute(
                    delete(table).where(table.conversation_id == conversation_id)
                )
            await session.execute(delete(Conversation).where(Conversation.id == conversation_id))

    async def rename(
        self,
        app: AppContext,
        user: str | None,
        conversation_id: str,
        name: str | None,
        auto_generate: bool,
    ) -> dict[str, Any]:
        if not auto_generate:
            if name is None or not name.strip():
                raise InvalidParam("name is required when auto_generate is false")
            if len(name) > NAME_MAX:
                raise InvalidParam(f"name must be at most {NAME_MAX} characters")
        end_user_id = await self.end_users.resolve(app.id, user)
        async with self.sessions() as session:
            await owned_conversation(session, app.id, end_user_id, conversation_id)
            first_query = await session.scalar(
                select(Message.query)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.created_at, Message.id)
                .limit(1)
            )
        if auto_generate:
            if first_query is None:
                raise InvalidParam("The conversation has no message to make a name from.")
            name = await self._title(app, first_query)
        async with self.sessions.begin() as session:
            if name is not None:
                await session.execute(
                    update(Conversation)
                    .where(Conversation.id == conversation_id)
                    .values(name=name, updated_at=utcnow())
                )
            row = await owned_conversation(session, app.id, end_user_id, conversation_id)
            return conversation_dict(row)

    async def _title(self, app: AppContext, query: str) -> str | None:
        """A model-made title; on a model failure the name stays as it is (as Dify)."""
        m = app.config.model
        try:
            model = self.models.get(m.spec, base_url=m.base_url, api_key=m.api_key)
            return await generate_title(model, query)
        except Exception as exc:  # a title is best effort
            log.info("title generation failed: %s", exc)
            return None

    async def variables(
        self,
        app: AppContext,
        user: str | None,
        conversation_id: str,
        last_id: str | None,
        limit: int,
        variable_name: str | None,
    ) -> dict[str, Any]:
        if variable_name is not None and not VARIABLE_NAME.match(variable_name):
            raise InvalidParam(
                "variable_name must be 1-255 letters, digits, '-', '_' or '.' characters"
            )
        end_user_id = await self.end_users.resolve(app.id, user)
        async with self.sessions.begin() as session:
            await owned_conversation(session, app.id, end_user_id, conversation_id)
            rows = await variables_service.ensure(session, app.config, app.id, conversation_id)
        if variable_name:
            rows = [r for r in rows if variable_name.lower() in r.name.lower()]
        if last_id:
            ids = [r.id for r in rows]
            if last_id not in ids:
                raise InvalidParam("last_id is not a variable of this conversation")
            rows = rows[ids.index(last_id) + 1 :]
        return {
            "limit": limit,
            "has_more": len(rows) > limit,
            "data": [variables_service.variable_dict(r) for r in rows[:limit]],
        }

    async def set_variable(
        self, app: AppContext, user: str | None, conversation_id: str, variable_id: str, value: Any
    ) -> dict[str, Any]:
        end_user_id = await self.end_users.resolve(app.id, user)
        async with self.sessions.begin() as session:
            await owned_conversation(session, app.id, end_user_id, conversation_id)
            rows = await variables_service.ensure(session, app.config, app.id, conversation_id)
            row = next((r for r in rows if r.id == variable_id), None)
            if row is None:
                raise ConversationVariableNotExists()
            variables_service.check_value(row, value)
            row.value = {"v": value}
            row.updated_at = utcnow()
            await session.flush()
            return variables_service.variable_dict(row)
