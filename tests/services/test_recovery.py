"""Messages left ``running`` by a crash are marked failed when the server starts."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select

from parlour.services.workers import recover_interrupted
from parlour.storage.db import make_sessionmaker
from parlour.storage.models import App, Conversation, EndUser, Message, utcnow
from tests.conftest import Database


async def test_running_messages_become_errors(database: Database) -> None:
    engine = database.engine()
    sessions = make_sessionmaker(engine)
    app, user, conv = (str(uuid.uuid4()) for _ in range(3))
    now = utcnow()
    async with sessions.begin() as s:
        await s.execute(insert(App).values(id=app, name="a", config={}, created_at=now,
                                           updated_at=now, description="", mode="chat",
                                           status="normal", enable_api=True,
                                           max_active_requests=0))
        await s.execute(insert(EndUser).values(id=user, app_id=app, session_id="u",
                                               type="service-api", is_anonymous=False,
                                               created_at=now, updated_at=now))
        await s.execute(insert(Conversation).values(id=conv, app_id=app, end_user_id=user,
                                                    mode="chat", name="c", inputs={},
                                                    introduction="", status="normal",
                                                    created_at=now, updated_at=now))
        for status in ("running", "normal"):
            await s.execute(insert(Message).values(
                id=str(uuid.uuid4()), app_id=app, conversation_id=conv, end_user_id=user,
                task_id=str(uuid.uuid4()), query="q", status=status, inputs={},
                created_at=now, updated_at=now,
            ))
    assert await recover_interrupted(sessions) == 1
    async with sessions() as s:
        statuses = sorted((await s.scalars(select(Message.status))).all())
        errors = (await s.scalars(select(Message.error).where(Message.status == "error"))).all()
    assert statuses == ["error", "normal"]
    assert errors[0] and "Interrupted" in errors[0]
    await engine.dispose()
