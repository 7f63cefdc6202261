"""Keys of the Knowledge API (``dataset-…``): create, list, revoke, and authenticate a bearer
token. Stored as sha256 only, like app keys; a key opens every knowledge base or just one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parlour.errors import Unauthorized
from parlour.services.apps import bearer_hash, hash_key, new_key, revoke
from parlour.services.knowledge import find_kb
from parlour.storage.models import DatasetKey, KnowledgeBase


@dataclass(frozen=True, slots=True)
class DatasetScope:
    """What a request's key may reach: every knowledge base (``kb_id`` None) or one."""

    key_id: str
    kb_id: str | None = None

    def allows(self, kb_id: str) -> bool:
        return self.kb_id is None or self.kb_id == kb_id


async def authenticate(session: AsyncSession, header: str | None) -> DatasetScope:
    """``Authorization: Bearer dataset-…``, with Dify's messages; a revoked key fails at once."""
    key_hash = bearer_hash(header)
    row = (
        await session.execute(
            select(DatasetKey.id, DatasetKey.kb_id).where(
                DatasetKey.key_hash == key_hash, DatasetKey.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        raise Unauthorized("Access token is invalid")
    return DatasetScope(row.id, row.kb_id)


# --- operator side (CLI) -----------------------------------------------------------------------


async def create_key(session: AsyncSession, kb_ref: str | None) -> tuple[DatasetKey, str]:
    kb: KnowledgeBase | None = await find_kb(session, kb_ref) if kb_ref else None
    token = new_key("dataset-")
    key = DatasetKey(
        id=str(uuid.uuid4()),
        kb_id=kb.id if kb else None,
        key_hash=hash_key(token),
        key_hint=f"{token[:11]}…{token[-4:]}",
    )
    session.add(key)
    await session.flush()
    return key, token


async def list_keys(session: AsyncSession, kb_ref: str | None = None) -> list[DatasetKey]:
    stmt = select(DatasetKey).order_by(DatasetKey.created_at)
    if kb_ref:
        stmt = stmt.where(DatasetKey.kb_id == (await find_kb(session, kb_ref)).id)
    return list((await session.scalars(stmt)).all())


async def revoke_key(session: AsyncSession, key_id: str) -> DatasetKey:
    return await revoke(session, DatasetKey, key_id, "Dataset API key not found")


def key_dict(key: DatasetKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "knowledge_base": key.kb_id or "*",
        "hint": key.key_hint,
        "created_at": int(key.created_at.timestamp()),
        "revoked": key.revoked_at is not None,
    }
