"""Shared test helpers: change an app's config in place, add a second app, raw rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parlour.appconfig import AppConfig
from parlour.services import apps as apps_service
from parlour.storage.db import make_sessionmaker
from parlour.storage.models import App, Conversation, Message, utcnow
from tests.conftest import Server


@asynccontextmanager
async def db(server: Server) -> AsyncIterator[AsyncSession]:
    """A committed transaction on the server's database."""
    engine = server.database.engine()
    try:
        async with make_sessionmaker(engine).begin() as session:
            yield session
    finally:
        await engine.dispose()


async def set_config(server: Server, app_id: str | None = None, **changes: Any) -> None:
    """Change the app's config (as `parlour apps update` does: bump updated_at)."""
    app_id = app_id or server.app_id
    async with db(server) as session:
        app = (await session.scalars(select(App).where(App.id == app_id))).one()
        raw = {**app.config, **changes}
        AppConfig.model_validate(raw)
        await session.execute(
            update(App).where(App.id == app_id).values(
                config=raw, updated_at=max(utcnow(), app.updated_at + timedelta(microseconds=1))
            )
        )


async def second_app(server: Server, name: str = "other") -> tuple[str, str]:
    """Another app on the same server: (app id, key)."""
    async with db(server) as session:
        app = await apps_service.create_app(session, name, model="fake:echo")
        _, key = await apps_service.create_key(session, app)
        return app.id, key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def end_user_id(server: Server, user: str, app_id: str | None = None) -> str:
    return str(await server.state.end_users.resolve(app_id or server.app_id, user))


async def insert_conversation(
    server: Server, user: str, at: datetime, *, updated: datetime | None = None,
    app_id: str | None = None, name: str = "c",
) -> str:
    """A conversation row written directly (to control its timestamps)."""
    cid = str(uuid.uuid4())
    app_id = app_id or server.app_id
    owner = await end_user_id(server, user, app_id)
    async with db(server) as session:
        await session.execute(insert(Conversation).values(
            id=cid, app_id=app_id, end_user_id=owner, mode="chat", name=name, inputs={},
            introduction="", status="normal", created_at=at, updated_at=updated or at,
        ))
    return cid


async def insert_messages(
    server: Server, conversation_id: str, user: str, at: datetime, count: int,
    status: str = "normal",
) -> list[str]:
    """``count`` messages sharing one created_at."""
    owner = await end_user_id(server, user)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    async with db(server) as session:
        for i, mid in enumerate(ids):
            await session.execute(insert(Message).values(
                id=mid, app_id=server.app_id, conversation_id=conversation_id,
                end_user_id=owner, task_id=str(uuid.uuid4()), query=f"q{i}", answer=f"a{i}",
                inputs={}, status=status, created_at=at, updated_at=at,
            ))
    return ids
