"""Apps and their API keys: create, list, revoke, and authenticate a bearer token."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from parlour.appconfig import AppConfig, ModelConfig
from parlour.errors import Forbidden, InvalidParam, NotFound, Unauthorized
from parlour.storage.hotpath import HotPath, KeyProof, KeyRow
from parlour.storage.hotpath import StaleKey as StaleKey
from parlour.storage.models import ApiKey, App, DatasetKey, utcnow

K = TypeVar("K", ApiKey, DatasetKey)

KEY_ALPHABET = string.ascii_letters + string.digits
CHAT_MODES = ("chat", "agent-chat", "advanced-chat")


def new_key(prefix: str = "app-") -> str:
    return prefix + "".join(secrets.choice(KEY_ALPHABET) for _ in range(24))


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_hash(header: str | None) -> str:
    """The hash of the token in ``Authorization: Bearer …``; Dify's 401 messages otherwise."""
    if not header or " " not in header.strip():
        raise Unauthorized("Authorization header must be provided and start with 'Bearer'")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("Authorization scheme must be 'Bearer'")
    return hash_key(token.strip())


@dataclass(frozen=True, slots=True)
class AppContext:
    """What a request knows about the app its key belongs to."""

    id: str
    name: str
    description: str
    mode: str
    config: AppConfig
    max_active_requests: int
    # set when the key row was remembered, not read: the turn's first write proves it
    proof: KeyProof | None = None


class KeyHints:
    """Key rows this worker has read, by key hash. ``POST /chat-messages`` starts from the
    remembered row instead of reading it, and the statement that opens the turn writes only
    if the row still holds (``KeyProof``): a revoked key still stops at once, and a message
    costs one database round trip less."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._rows: dict[str, KeyRow] = {}
        self._reads: dict[str, asyncio.Event] = {}

    def get(self, key_hash: str) -> KeyRow | None:
        return self._rows.get(key_hash)

    @contextlib.contextmanager
    def reading(self, key_hash: str) -> Iterator[None]:
        """Marks a read of the key under way, so that requests arriving meanwhile wait for
        it and start from the row it remembers instead of each reading the same row (a
        burst after a start)."""
        if key_hash in self._reads:
            yield
            return
        done = self._reads[key_hash] = asyncio.Event()
        try:
            yield
        finally:
            del self._reads[key_hash]
            done.set()

    async def after_read(self, key_hash: str) -> KeyRow | None:
        """The remembered row once the read under way (if any) has ended. It is only a
        starting point: the turn's first write proves it, as for any remembered row."""
        read = self._reads.get(key_hash)
        if read is not None:
            await read.wait()
        return self._rows.get(key_hash)

    def put(self, key_hash: str, row: KeyRow) -> None:
        if len(self._rows) >= self.size and key_hash not in self._rows:
            self._rows.pop(next(iter(self._rows)))
        self._rows[key_hash] = row

    def drop(self, key_hash: str) -> None:
        self._rows.pop(key_hash, None)


class AppCache:
    """Parsed app configs, keyed by (id, updated_at): loaded and validated once per change,
    not per request."""

    def __init__(self) -> None:
        self._configs: dict[str, tuple[datetime, AppConfig]] = {}
        self._loads: dict[tuple[str, datetime], asyncio.Future[AppConfig]] = {}

    def get(self, app_id: str, updated_at: datetime) -> AppConfig | None:
        hit = self._configs.get(app_id)
        return hit[1] if hit is not None and hit[0] == updated_at else None

    def put(self, app_id: str, updated_at: datetime, raw: dict[str, Any]) -> AppConfig:
        cfg = AppConfig.model_validate(raw)
        self._configs[app_id] = (updated_at, cfg)
        return cfg

    async def load(self, hot: HotPath, app_id: str, updated_at: datetime) -> AppConfig:
        """The app's config as of ``updated_at``: cached, or read once however many
        requests ask for it at the same time (a config never changes under one stamp)."""
        config = self.get(app_id, updated_at)
        if config is not None:
            return config
        key = (app_id, updated_at)
        load = self._loads.get(key)
        if load is None:
            load = self._loads[key] = asyncio.ensure_future(self._read(hot, key))
            load.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(load)  # a waiter that goes away leaves the read to others

    def _loaded(self, key: tuple[str, datetime], load: asyncio.Future[AppConfig]) -> None:
        del self._loads[key]
        if not load.cancelled():
            load.exception()  # seen, even when every waiter has gone away

    async def _read(self, hot: HotPath, key: tuple[str, datetime]) -> AppConfig:
        return self.put(key[0], key[1], await hot.config(key[0]))


async def authenticate(
    hot: HotPath, cache: AppCache, header: str | None, hints: KeyHints | None = None
) -> AppContext:
    """Check ``Authorization: Bearer app-…`` exactly as Dify does (messages included).

    Reads the key's row, so a revoked key stops working at once; ``hints`` learns the
    answer."""
    key_hash = bearer_hash(header)
    if hints is None:
        return _context(*await _read_key(hot, cache, key_hash))
    with hints.reading(key_hash):
        hints.drop(key_hash)
        row, config = await _read_key(hot, cache, key_hash)
        hints.put(key_hash, row)
    return _context(row, config)


async def _read_key(hot: HotPath, cache: AppCache, key_hash: str) -> tuple[KeyRow, AppConfig]:
    row = await hot.key(key_hash)
    if row is None:
        raise Unauthorized("Access token is invalid")
    if row.status != "normal":
        raise Forbidden("The app's status is abnormal.")
    if not row.enable_api:
        raise Forbidden("The app's API service has been disabled.")
    return row, await cache.load(hot, row.id, row.updated_at)


async def authenticate_hinted(
    hot: HotPath, cache: AppCache, hints: KeyHints, header: str | None
) -> AppContext:
    """``authenticate`` from a remembered key row when there is one; the context then
    carries the proof that the turn's first write checks (a message's path only)."""
    key_hash = bearer_hash(header)
    row = hints.get(key_hash)
    if row is None:
        row = await hints.after_read(key_hash)
    config = None if row is None else cache.get(row.id, row.updated_at)
    if row is None or config is None:
        return await authenticate(hot, cache, header, hints)
    return _context(row, config, KeyProof(key_hash, row))


@dataclass(slots=True)
class Keys:
    """A worker's app keys: read from the database, or from what it remembers (KeyHints)."""

    hot: HotPath
    cache: AppCache
    hints: KeyHints

    async def read(self, header: str | None) -> AppContext:
        return await authenticate(self.hot, self.cache, header, self.hints)

    async def remembered(self, header: str | None) -> AppContext:
        return await authenticate_hinted(self.hot, self.cache, self.hints, header)


def _context(row: KeyRow, config: AppConfig, proof: KeyProof | None = None) -> AppContext:
    return AppContext(
        id=row.id,
        name=row.name,
        description=row.description,
        mode=row.mode,
        config=config,
        max_active_requests=row.max_active_requests,
        proof=proof,
    )


# --- operator side (CLI) -----------------------------------------------------------------------


def app_dict(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "description": app.description,
        "mode": app.mode,
        "model": f"{app.config.get('model', {}).get('provider')}:"
        f"{app.config.get('model', {}).get('name')}",
        "created_at": int(app.created_at.timestamp()),
    }


async def create_app(
    session: AsyncSession,
    name: str,
    *,
    model: str,
    prompt: str = "",
    description: str = "",
    opening_statement: str = "",
    mode: str = "chat",
) -> App:
    try:
        model_cfg = ModelConfig.from_spec(model)
    except ValueError as exc:
        raise InvalidParam(str(exc)) from exc
    if mode not in CHAT_MODES:
        raise InvalidParam(f"mode must be one of {', '.join(CHAT_MODES)}")
    config = AppConfig(model=model_cfg, pre_prompt=prompt, opening_statement=opening_statement)
    app = App(
        id=str(uuid.uuid4()),
        name=name,
        description=description,
        mode=mode,
        config=config.model_dump(mode="json"),
    )
    session.add(app)
    await session.flush()
    return app


async def list_apps(session: AsyncSession) -> list[App]:
    return list((await session.scalars(select(App).order_by(App.created_at))).all())


async def find_app(session: AsyncSession, ref: str) -> App:
    """An app by id or by (unique) name."""
    app = await session.get(App, ref)
    if app is None:
        found = (await session.scalars(select(App).where(App.name == ref))).all()
        if len(found) > 1:
            raise InvalidParam(f"Several apps are named {ref!r}; use the app id.")
        app = found[0] if found else None
    if app is None:
        raise NotFound("App not found")
    return app


async def create_key(session: AsyncSession, app: App) -> tuple[ApiKey, str]:
    token = new_key()
    key = ApiKey(
        id=str(uuid.uuid4()), app_id=app.id, key_hash=hash_key(token),
        key_hint=f"{token[:7]}…{token[-4:]}",
    )
    session.add(key)
    await session.flush()
    return key, token


async def add_key(session: AsyncSession, app: App, token: str) -> ApiKey:
    """Register a key chosen by the operator (the demo app's key is kept across starts)."""
    key = ApiKey(
        id=str(uuid.uuid4()), app_id=app.id, key_hash=hash_key(token),
        key_hint=f"{token[:7]}…{token[-4:]}",
    )
    session.add(key)
    await session.flush()
    return key


async def list_keys(session: AsyncSession, app: App) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.app_id == app.id).order_by(ApiKey.created_at)
    return list((await session.scalars(stmt)).all())


def key_dict(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "app_id": key.app_id,
        "hint": key.key_hint,
        "created_at": int(key.created_at.timestamp()),
        "revoked": key.revoked_at is not None,
    }


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKey:
    return await revoke(session, ApiKey, key_id, "API key not found")


async def revoke(session: AsyncSession, table: type[K], key_id: str, missing: str) -> K:
    """Mark a key (of apps or of the Knowledge API) revoked; revoking twice keeps the first
    time."""
    key = await session.get(table, key_id)
    if key is None:
        raise NotFound(missing)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key
