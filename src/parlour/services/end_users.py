"""End users: one per (app, ``user`` string), created on first sight."""

from __future__ import annotations

import uuid
from collections import OrderedDict

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.errors import EndUserNotFound
from parlour.storage.models import EndUser, utcnow

DEFAULT_USER = "DEFAULT-USER"


class EndUsers:
    """Resolves ``user`` strings to end-user ids; remembers the answers (they never change)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], size: int = 50_000):
        self.sessions = sessions
        self.size = size
        self._ids: OrderedDict[tuple[str, str], str] = OrderedDict()

    def known(self, app_id: str, user: object) -> bool:
        """Whether ``resolve`` would answer for ``user`` (as sent) without the database."""
        return isinstance(user, str) and (app_id, user or DEFAULT_USER) in self._ids

    async def resolve(self, app_id: str, user: str | None) -> str:
        session_id = user or DEFAULT_USER
        key = (app_id, session_id)
        hit = self._ids.get(key)
        if hit is not None:
            return hit
        end_user_id = await self._get_or_create(app_id, session_id)
        self._ids[key] = end_user_id
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return end_user_id

    async def _get_or_create(self, app_id: str, session_id: str) -> str:
        find = select(EndUser.id).where(
            EndUser.app_id == app_id, EndUser.session_id == session_id
        )
        async with self.sessions() as session:
            found = await session.scalar(find)
            if found is not None:
                return str(found)
            new_id = str(uuid.uuid4())
            now = utcnow()
            try:
                await session.execute(
                    insert(EndUser).values(
                        id=new_id, app_id=app_id, session_id=session_id, type="service-api",
                        is_anonymous=session_id == DEFAULT_USER, created_at=now, updated_at=now,
                    )
                )
                await session.commit()
                return new_id
            except IntegrityError:  # created by a concurrent request
                await session.rollback()
                return str(await session.scalar(find))


async def end_user_dict(
    sessions: async_sessionmaker[AsyncSession], app_id: str, end_user_id: str
) -> dict[str, object]:
    """GET /end-users/{id}: an end user of this app, else ``end_user_not_found``."""
    async with sessions() as session:
        row = await session.scalar(
            select(EndUser).where(EndUser.id == end_user_id, EndUser.app_id == app_id)
        )
    if row is None:
        raise EndUserNotFound()
    return {
        "id": row.id,
        "tenant_id": None,
        "app_id": row.app_id,
        "type": row.type,
        "external_user_id": row.session_id,
        "name": row.name,
        "is_anonymous": row.is_anonymous,
        "session_id": row.session_id,
        "created_at": row.created_at.isoformat(timespec="seconds"),
        "updated_at": row.updated_at.isoformat(timespec="seconds"),
    }
