"""A document deleted while it is being indexed stays deleted: whichever worker (or the
background indexer) is indexing it writes nothing once the delete is in. SQLite and
PostgreSQL; on PostgreSQL also a delete in flight while the indexer reaches its write."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from parlour.providers.fake import FakeChatModel
from parlour.retrieval.embedders import EmbedderRegistry
from parlour.retrieval.vectors import NumpyStore
from parlour.services import knowledge as knowledge_module
from parlour.services.indexing import Indexer
from parlour.services.knowledge import Knowledge
from parlour.storage.blobs import LocalBlobStore
from parlour.storage.db import make_sessionmaker
from parlour.storage.models import KnowledgeDocument, KnowledgeSegment
from tests.conftest import Database, run_server
from tests.knowledge.dataset_helpers import Api, new_dataset_key
from tests.knowledge.test_indexing import GatedRegistry
from tests.knowledge.test_knowledge_service import PETS


async def rows(knowledge: Knowledge, doc_id: str) -> tuple[int, int]:
    """(documents, segments) stored under ``doc_id``."""
    async with knowledge.sessions() as session:
        docs = await session.scalar(
            select(func.count())
            .select_from(KnowledgeDocument)
            .where(KnowledgeDocument.id == doc_id)
        )
        segs = await session.scalar(
            select(func.count())
            .select_from(KnowledgeSegment)
            .where(KnowledgeSegment.document_id == doc_id)
        )
    return int(docs or 0), int(segs or 0)


def after_embedding(monkeypatch: pytest.MonkeyPatch, hook: Callable[[], Awaitable[None]]) -> None:
    """Run ``hook`` between the indexer's embedding and its write (once)."""
    real = knowledge_module.embed_batched
    done: list[bool] = []

    async def embed_then_hook(*args: Any, **kw: Any) -> np.ndarray:
        vectors = await real(*args, **kw)
        if not done:
            done.append(True)
            await hook()
        return vectors

    monkeypatch.setattr(knowledge_module, "embed_batched", embed_then_hook)


async def writes_waiting(engine: AsyncEngine) -> bool:
    """Whether the indexer's write (its first statement) waits for a lock."""
    async with engine.connect() as probe:
        count = await probe.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%knowledge_documents SET updated_at%'"
            )
        )
    return bool(count)


async def test_a_delete_between_embedding_and_writing_wins(
    database: Database, knowledge: Knowledge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = LocalBlobStore(tmp_path / "datasets")
    indexer = Indexer(knowledge.sessions, knowledge, blobs)
    kb = await knowledge.create("pets")
    queued: list[KnowledgeDocument] = []

    async def delete_elsewhere() -> None:  # as another worker would: no local job to cancel
        await knowledge.delete_document(kb["id"], queued[0].id)

    after_embedding(monkeypatch, delete_elsewhere)
    queued.append(await indexer.submit(kb["id"], "pets.md", PETS.encode(), "upload_file"))
    await indexer.drain()
    assert await rows(knowledge, queued[0].id) == (0, 0)
    assert not await blobs.exists(queued[0].blob_key)
    assert await knowledge.documents("pets") == []
    assert await knowledge.search([kb["id"]], "how often to walk a dog") == []
    again = await indexer.submit(kb["id"], "pets.md", PETS.encode(), "upload_file")
    assert again.id != queued[0].id  # a new document, not the deleted one back
    await indexer.drain()
    assert [d["indexing_status"] for d in await knowledge.documents("pets")] == ["completed"]
    await indexer.close()


async def test_a_delete_on_another_worker_during_indexing_wins(
    database: Database, tmp_path: Path, fake_model: FakeChatModel, embedders: EmbedderRegistry
) -> None:
    gate = threading.Event()
    try:
        async with run_server(database, tmp_path, fake_model) as indexing:
            indexing.state.knowledge.embedders = GatedRegistry(embedders, gate)
            async with run_server(
                database, tmp_path, fake_model, app_id=indexing.app_id, key=indexing.key
            ) as other:
                other.state.knowledge.embedders = embedders
                key = await new_dataset_key(database)
                first, second = Api(indexing, key), Api(other, key)
                kb = await first.dataset("pets")
                created = await first.add_text(kb, "pets", PETS)
                await first.wait(kb, created["batch"], until=("indexing",))
                r = await second.delete(f"/datasets/{kb}/documents/{created['document']['id']}")
                assert r.status_code == 204, r.text
                gate.set()  # the first worker's embedding ends after the delete
                await indexing.state.indexer.drain()  # its job ends
                assert (await first.get(f"/datasets/{kb}/documents")).json()["total"] == 0
                r = await first.post(f"/datasets/{kb}/retrieve", {"query": "walk my dog"})
                assert r.json()["records"] == []
                doc_id = created["document"]["id"]
                assert await rows(indexing.state.knowledge, doc_id) == (0, 0)
    finally:
        gate.set()


async def test_a_delete_in_flight_on_postgresql_blocks_the_write_then_wins(
    pgvector_database: Database,
    embedders: EmbedderRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The delete holds the document's row (uncommitted) when the indexer starts its write:
    the write waits on the row lock, then finds the row gone and writes nothing."""
    engine = pgvector_database.engine()
    sessions = make_sessionmaker(engine)
    knowledge = Knowledge(sessions, embedders, NumpyStore())
    blobs = LocalBlobStore(tmp_path / "datasets")
    indexer = Indexer(sessions, knowledge, blobs)
    try:
        kb = await knowledge.create("pets")
        queued: list[KnowledgeDocument] = []
        deleting = await engine.connect()
        held = await deleting.begin()

        async def delete_in_flight() -> None:
            await deleting.execute(
                text("DELETE FROM knowledge_documents WHERE id = :id"), {"id": queued[0].id}
            )

        after_embedding(monkeypatch, delete_in_flight)
        try:
            queued.append(await indexer.submit(kb["id"], "pets.md", PETS.encode(), "upload_file"))
            async with asyncio.timeout(60):  # until the indexer's write waits for the row lock
                while not await writes_waiting(engine):
                    await asyncio.sleep(0.02)
            await held.commit()
        finally:
            await deleting.close()  # a failed wait rolls the delete back and frees the row
        await indexer.drain()
        assert await rows(knowledge, queued[0].id) == (0, 0)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(KnowledgeSegment)) == 0
    finally:
        await indexer.close()
        knowledge.close()
        await engine.dispose()
