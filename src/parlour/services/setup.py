"""First start: migrate, and create the demo app with a key (printed once)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from parlour.config import Settings
from parlour.services import apps
from parlour.storage.db import make_engine, make_sessionmaker
from parlour.storage.migrate import upgrade
from parlour.storage.models import App

DEMO_APP = "demo"
DEMO_PROMPT = "You are a helpful assistant. Answer briefly."


@dataclass
class Prepared:
    app_id: str
    key: str | None  # only on the start that created it


async def migrate(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url(), schema=settings.database_schema)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def prepare(settings: Settings) -> Prepared | None:
    """Migrate, then make sure a demo app exists (when enabled); return its key if new."""
    await migrate(settings)
    if not settings.create_demo_app:
        return None
    engine = make_engine(settings.resolved_database_url(), schema=settings.database_schema)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions.begin() as session:
            existing = await session.scalar(select(App).limit(1))
            if existing is not None:
                return Prepared(existing.id, None)
            app = await apps.create_app(
                session,
                DEMO_APP,
                model=settings.default_model,
                prompt=DEMO_PROMPT,
                description="The demo app created on first start.",
                opening_statement="Hello! Ask me anything.",
            )
            _, token = await apps.create_key(session, app)
            return Prepared(app.id, token)
    finally:
        await engine.dispose()
