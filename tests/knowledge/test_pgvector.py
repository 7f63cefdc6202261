"""pgvector: HNSW answers as exact search does, a deleted document's vectors leave the index,
and a PostgreSQL without the extension falls back to exact search with one warning."""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from parlour.retrieval.embedders import EmbedderRegistry
from parlour.retrieval.vectors import NumpyStore, Reader, from_blobs, to_blob
from parlour.services.knowledge import Knowledge, SearchOptions
from parlour.storage.db import make_sessionmaker
from parlour.storage.models import KnowledgeBase, KnowledgeDocument, KnowledgeSegment
from parlour.storage.pgvector import PgVectorStore, table_name
from tests.conftest import Database
from tests.knowledge.test_knowledge_service import BILLING, PETS


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    rows = centres[rng.integers(0, 20, n)] + 0.5 * rng.normal(size=(n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


async def add_base(sessions: async_sessionmaker[AsyncSession], vectors: np.ndarray) -> str:
    kb_id, doc_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with sessions.begin() as session:
        session.add(
            KnowledgeBase(
                id=kb_id,
                name="synthetic",
                description="",
                embedding_model="test",
                dim=vectors.shape[1],
                chunk_tokens=100,
                chunk_overlap=0,
                retrieval={},
                index_version=1,
            )
        )
        session.add(KnowledgeDocument(id=doc_id, kb_id=kb_id, name="d.txt"))
        await session.flush()
        session.add_all(
            KnowledgeSegment(
                id=str(uuid.uuid4()),
                kb_id=kb_id,
                document_id=doc_id,
                position=i,
                content=f"row {i}",
                content_hash=str(i),
                vector=to_blob(v),
            )
            for i, v in enumerate(vectors)
        )
    return kb_id


def reader(sessions: async_sessionmaker[AsyncSession], kb_id: str) -> Reader:
    async def read() -> tuple[list[str], np.ndarray]:
        async with sessions() as session:
            rows = (
                await session.execute(
                    text("SELECT id, vector FROM knowledge_segments WHERE kb_id = :kb"),
                    {"kb": kb_id},
                )
            ).all()
        return [r.id for r in rows], from_blobs([r.vector for r in rows], 1)

    return read


async def test_hnsw_search_matches_exact_search(pgvector_database: Database) -> None:
    settings = {"search_path": pgvector_database.schema, "enable_seqscan": "off"}
    engine = create_async_engine(pgvector_database.url, connect_args={"server_settings": settings})
    sessions = make_sessionmaker(engine)
    try:
        vectors = clustered(1500, 64, seed=1)
        kb_id = await add_base(sessions, vectors)
        store, exact = PgVectorStore(sessions, ef_search=400), NumpyStore()
        await store.sync(kb_id, 1, reader(sessions, kb_id))
        await exact.sync(kb_id, 1, reader(sessions, kb_id))
        assert await store.available()
        for query in clustered(10, 64, seed=2):
            got, want = await store.search(kb_id, query, 10), exact.nearest(kb_id, query, 10)
            assert [sid for sid, _ in got] == [sid for sid, _ in want]
            assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
        some = [sid for sid, _ in want[:3]]
        assert await store.scores(kb_id, query, some) == pytest.approx(
            exact.cosines(kb_id, query, some), abs=1e-5
        )
        async with sessions() as session:
            plan = "\n".join(
                await session.scalars(
                    text(
                        f"EXPLAIN SELECT segment_id FROM {table_name(kb_id)} "
                        "ORDER BY embedding OPERATOR(public.<=>) "
                        "CAST(CAST(:q AS real[]) AS public.vector) LIMIT 10"
                    ),
                    {"q": query.tolist()},
                )
            )
        assert f"Index Scan using {table_name(kb_id)}_hnsw" in plan
        await store.drop(kb_id)
        async with sessions() as session:
            assert await session.scalar(text(f"SELECT to_regclass('{table_name(kb_id)}')")) is None
    finally:
        await engine.dispose()


async def test_deleting_a_document_removes_its_vectors(
    pgvector_database: Database, embedders: EmbedderRegistry, executor: ThreadPoolExecutor
) -> None:
    engine = pgvector_database.engine()
    knowledge = Knowledge(make_sessionmaker(engine), embedders, NumpyStore(), executor)
    assert isinstance(knowledge.store, PgVectorStore)
    try:
        kb = await knowledge.create("mixed", chunk_tokens=40, chunk_overlap=0)
        await knowledge.add_document("mixed", "pets.md", PETS.encode())
        billing = await knowledge.add_document("mixed", "billing.md", BILLING.encode())
        hybrid = SearchOptions(method="hybrid_search", top_k=3)
        hits = await knowledge.search(["mixed"], "refund to my card", hybrid)
        assert hits[0].title == "Refunds" and hits[0].document_name == "billing.md"
        table = table_name(kb["id"])
        count = text(f"SELECT count(*) FROM {table}")
        async with knowledge.sessions() as session:
            assert await session.scalar(count) == 5
        await knowledge.delete_document("mixed", billing["id"])
        async with knowledge.sessions() as session:
            assert await session.scalar(count) == 3
        hits = await knowledge.search(["mixed"], "refund to my card", SearchOptions(top_k=5))
        assert {h.document_name for h in hits} == {"pets.md"} and len(hits) == 3
        await knowledge.delete("mixed")
        async with knowledge.sessions() as session:
            assert await session.scalar(text(f"SELECT to_regclass('{table}')")) is None
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_without_the_extension_search_falls_back_with_one_warning(
    knowledge: Knowledge, caplog: pytest.LogCaptureFixture
) -> None:
    async with knowledge.sessions() as session:
        installable = await session.scalar(
            text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
        )
    assert installable == 0, "this test needs a PostgreSQL without pgvector"
    caplog.set_level(logging.WARNING, logger="parlour.knowledge")
    assert isinstance(knowledge.store, PgVectorStore)
    await knowledge.create("pets", chunk_tokens=40, chunk_overlap=0)
    await knowledge.add_document("pets", "pets.md", PETS.encode())
    for query, title in [("how often should I walk my dog", "Dogs"), ("goldfish age", "Fish")]:
        hits = await knowledge.search(["pets"], query, SearchOptions(top_k=2))
        assert hits[0].title == title
    warnings = [r for r in caplog.records if "pgvector" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert knowledge.store.nbytes() > 0  # the exact in-memory fallback holds the vectors


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_sqlite_keeps_the_numpy_store(knowledge: Knowledge) -> None:
    assert isinstance(knowledge.store, NumpyStore)
