"""Knowledge vectors in PostgreSQL with pgvector: one table per knowledge base,
``knowledge_vectors_<id>`` (``segment_id`` referencing ``knowledge_segments`` ON DELETE
CASCADE, ``embedding vector(dim)``) with an HNSW index on cosine distance.

The segments' float32 BLOBs stay the source of truth. ``sync`` copies into a base's table the
segments it lacks (deleted ones leave through the foreign key), so a base indexed before
pgvector was installed is picked up on its first search. Where the extension is missing and
cannot be created, the store logs one warning and answers from its exact in-memory fallback.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from parlour.retrieval.vectors import NumpyStore, Reader, VectorStore
from parlour.storage.db import unavailable

log = logging.getLogger("parlour.knowledge")

EF_SEARCH = 100  # HNSW candidate list per query: recall@10 >= 0.95 at 100k (bench/KNOWLEDGE.md)
HNSW_MAX_DIM = 2000  # pgvector's limit for an HNSW index on ``vector``; above it, exact scans
BATCH = 250  # rows per insert: each round trip stays well inside a statement timeout
BUILD_TIMEOUT = 3600.0  # seconds for an HNSW index build

_EXTENSION_SCHEMA = text(
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'vector'"
)
_TABLE_DIM = text(
    "SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attname = 'embedding'"
)


def table_name(kb_id: str) -> str:
    try:
        key = uuid.UUID(kb_id).hex
    except ValueError:
        key = hashlib.sha1(kb_id.encode()).hexdigest()[:32]
    return f"knowledge_vectors_{key}"


def for_database(sessions: async_sessionmaker[AsyncSession], store: VectorStore) -> VectorStore:
    """``store`` on SQLite; on PostgreSQL a ``PgVectorStore`` that falls back to it."""
    bind = sessions.kw.get("bind")
    if bind is not None and bind.dialect.name == "postgresql" and isinstance(store, NumpyStore):
        return PgVectorStore(sessions, store)
    return store


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lists(blobs: list[bytes]) -> list[list[float]]:
    return [np.frombuffer(b, dtype=np.float32).tolist() for b in blobs]


class PgVectorStore:
    """Approximate nearest neighbours (HNSW, ``ef_search`` candidates) in PostgreSQL."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fallback: VectorStore | None = None,
        ef_search: int = EF_SEARCH,
    ):
        self.sessions = sessions
        self.fallback: VectorStore = fallback or NumpyStore()
        self.ef_search = ef_search
        self._schema: str | None = None
        self._probed = False
        self._probe_lock = asyncio.Lock()
        self._versions: dict[str, int] = {}
        self._dims: dict[str, int] = {}

    async def available(self) -> bool:
        """Whether pgvector is installed (created here if it can be); probed once."""
        if not self._probed:
            async with self._probe_lock:
                if not self._probed:
                    self._schema = await self._probe()
                    self._probed = True
        return self._schema is not None

    async def _probe(self) -> str | None:
        try:
            async with self.sessions.begin() as session:
                schema = await session.scalar(_EXTENSION_SCHEMA)
                if schema is None:
                    await session.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                    schema = await session.scalar(_EXTENSION_SCHEMA)
            return _quoted(schema)
        except DBAPIError as exc:
            if unavailable(exc):
                raise
            async with self.sessions() as session:  # another worker may have just created it
                schema = await session.scalar(_EXTENSION_SCHEMA)
            if schema is None:
                reason = str(getattr(exc, "orig", exc)).splitlines()[0]
                log.warning(
                    "pgvector is not available in this PostgreSQL database (%s); "
                    "knowledge search falls back to exact search in memory",
                    reason,
                )
                return None
            return _quoted(schema)

    def _sql(self, template: str, kb_id: str) -> Any:
        return text(template.format(s=self._schema, t=table_name(kb_id)))

    async def sync(self, kb_id: str, version: int, read: Reader) -> None:
        if not await self.available():
            return await self.fallback.sync(kb_id, version, read)
        if self._versions.get(kb_id) == version:
            return
        t = table_name(kb_id)
        async with self.sessions.begin() as session:
            lock = text("SELECT pg_advisory_xact_lock(hashtext(:key))")
            await session.execute(lock, {"key": t})
            dim = await session.scalar(_TABLE_DIM, {"t": t})
            if dim is None:
                dim = await self._create(session, kb_id)
            else:
                await self._copy(session, kb_id)
        if dim:
            self._dims[kb_id] = int(dim)
        self._versions[kb_id] = version

    async def _create(self, session: AsyncSession, kb_id: str) -> int | None:
        """Create the base's table: filled first, then indexed (a faster build)."""
        one = text("SELECT vector FROM knowledge_segments WHERE kb_id = :kb LIMIT 1")
        blob = await session.scalar(one, {"kb": kb_id})
        if blob is None:
            return None
        dim = len(blob) // 4
        create = (
            "CREATE TABLE {t} (segment_id VARCHAR(36) PRIMARY KEY "
            "REFERENCES knowledge_segments(id) ON DELETE CASCADE, "
            "embedding {s}.vector(" + str(dim) + ") NOT NULL)"
        )
        await session.execute(self._sql(create, kb_id))
        await self._copy(session, kb_id)
        if dim <= HNSW_MAX_DIM:
            await session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            index = "CREATE INDEX {t}_hnsw ON {t} USING hnsw (embedding {s}.vector_cosine_ops)"
            # the build outlasts the engine's per-statement timeout on a large base (about a
            # minute at 100k): run it on the driver connection, in the same transaction
            raw = await (await session.connection()).get_raw_connection()
            sql = index.format(s=self._schema, t=table_name(kb_id))
            await raw.driver_connection.execute(sql, timeout=BUILD_TIMEOUT)  # type: ignore[union-attr]
        return dim

    async def _copy(self, session: AsyncSession, kb_id: str) -> None:
        """Insert the vectors of the base's segments that its table lacks."""
        missing = self._sql(
            "SELECT s.id FROM knowledge_segments s WHERE s.kb_id = :kb "
            "AND NOT EXISTS (SELECT 1 FROM {t} v WHERE v.segment_id = s.id)",
            kb_id,
        )
        ids = list((await session.scalars(missing, {"kb": kb_id})).all())
        if not ids:
            return
        log.info("indexing %d vectors of knowledge base %s in pgvector", len(ids), kb_id)
        read = text("SELECT id, vector FROM knowledge_segments WHERE id = ANY(:ids)")
        insert = self._sql(
            "INSERT INTO {t} (segment_id, embedding) "
            "VALUES (:id, CAST(CAST(:v AS real[]) AS {s}.vector)) ON CONFLICT DO NOTHING",
            kb_id,
        )
        for start in range(0, len(ids), BATCH):
            rows = (await session.execute(read, {"ids": ids[start : start + BATCH]})).all()
            vectors = await asyncio.to_thread(_lists, [r.vector for r in rows])
            params = [{"id": r.id, "v": v} for r, v in zip(rows, vectors, strict=True)]
            await session.execute(insert, params)

    async def search(self, kb_id: str, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        if not await self.available():
            return await self.fallback.search(kb_id, query, k)
        if k <= 0 or kb_id not in self._dims:
            return []
        sql = self._sql(
            "SELECT segment_id, embedding OPERATOR({s}.<=>) "
            "CAST(CAST(:q AS real[]) AS {s}.vector) AS distance "
            "FROM {t} ORDER BY distance LIMIT :k",
            kb_id,
        )
        ef = min(max(self.ef_search, k), 1000)
        engine: AsyncEngine = self.sessions.kw["bind"]
        async with engine.connect() as conn:
            # set once per pooled connection (a round trip less per query than SET LOCAL)
            if conn.info.get("hnsw.ef_search") != ef:
                await conn.execute(text(f"SET hnsw.ef_search = {ef}"))
                await conn.commit()
                conn.info["hnsw.ef_search"] = ef
            rows = await conn.execute(sql, {"q": query.tolist(), "k": k})
            return [(sid, 1.0 - float(d)) for sid, d in rows.all()]

    async def scores(self, kb_id: str, query: np.ndarray, ids: list[str]) -> dict[str, float]:
        if not await self.available():
            return await self.fallback.scores(kb_id, query, ids)
        if not ids or kb_id not in self._dims:
            return {}
        sql = self._sql(
            "SELECT segment_id, embedding OPERATOR({s}.<=>) "
            "CAST(CAST(:q AS real[]) AS {s}.vector) FROM {t} WHERE segment_id = ANY(:ids)",
            kb_id,
        )
        async with self.sessions() as session:
            rows = await session.execute(sql, {"q": query.tolist(), "ids": ids})
            return {sid: 1.0 - float(d) for sid, d in rows.all()}

    async def drop(self, kb_id: str) -> None:
        await self.fallback.drop(kb_id)
        self._versions.pop(kb_id, None)
        self._dims.pop(kb_id, None)
        if await self.available():
            async with self.sessions.begin() as session:
                await session.execute(self._sql("DROP TABLE IF EXISTS {t}", kb_id))

    def nbytes(self) -> int:
        return self.fallback.nbytes()
