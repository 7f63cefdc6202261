"""Shared test helpers: change an app's config in place, add a second app, raw rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from parlour.appconfig import AppConfig
from parlour.services import apps as apps_service
from parlour.storage.db import make_sessionmaker
from parlour.storage.models import App, utcnow
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
