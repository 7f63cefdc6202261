"""Background indexing survives restarts: a stopped server hands its documents back and the
next one finishes them; a crashed worker's documents are picked up (or failed when their
bytes are gone). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, update

from parlour.providers.fake import FakeChatModel
from parlour.retrieval.embedders import Embedder, EmbedderRegistry
from parlour.services.indexing import INTERRUPTED, Indexer
from parlour.services.knowledge import Knowledge
from parlour.storage.blobs import LocalBlobStore
from parlour.storage.db import make_sessionmaker
from parlour.storage.models import KnowledgeDocument, KnowledgeSegment
from tests.conftest import Database, run_server
from tests.knowledge.dataset_helpers import Api, new_dataset_key
from tests.knowledge.test_knowledge_service import PETS


class Gated:
    """An embedder that holds every call until ``gate`` opens."""

    def __init__(self, inner: Embedder, gate: threading.Event):
        self.inner, self.gate = inner, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, texts: list[str]) -> np.ndarray:
        self.gate.wait(30)
        return self.inner.embed(texts)


class GatedRegistry:
    def __init__(self, inner: EmbedderRegistry, gate: threading.Event):
        self.inner, self.gate = inner, gate

    def get(self, spec: str) -> Any:
        return Gated(self.inner.get(spec), self.gate)


async def documents(database: Database) -> list[KnowledgeDocument]:
    engine = database.engine()
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.scalars(select(KnowledgeDocument))).all())
    finally:
        await engine.dispose()


async def test_a_restart_mid_indexing_finishes_the_document(
    database: Database, tmp_path: Path, fake_model: FakeChatModel, embedders: EmbedderRegistry
) -> None:
    gate = threading.Event()
    try:
        async with run_server(database, tmp_path, fake_model) as first:
            first.state.knowledge.embedders = GatedRegistry(embedders, gate)
            api = Api(first, await new_dataset_key(database))
            kb = await api.dataset("pets")
            created = await api.add_text(kb, "pets", PETS)
            batch = created["batch"]
            status = await api.wait(kb, batch, until=("indexing",))
            assert status["total_segments"] >= 1 and status["completed_segments"] == 0
            assert status["splitting_completed_at"] is not None
        (doc,) = await documents(database)
        assert (doc.status, doc.worker) == ("waiting", None) and doc.blob_key
    finally:
        gate.set()
    async with run_server(
        database, tmp_path, fake_model, app_id=first.app_id, key=first.key
    ) as second:
        api = Api(second, api.key)
        status = await api.wait(kb, batch)
        assert status["indexing_status"] == "completed", status
        r = await api.post(f"/datasets/{kb}/retrieve", {"query": "how often to walk a dog"})
        assert "twice a day" in r.json()["records"][0]["segment"]["content"]
    (doc,) = await documents(database)
    assert doc.blob_key == "" and doc.worker is None
    assert not [p for p in (tmp_path / "datasets").rglob("*") if p.is_file()]  # bytes gone


async def test_work_of_a_crashed_worker_is_requeued_or_failed(
    database: Database, knowledge: Knowledge, tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path / "datasets")
    indexer = Indexer(knowledge.sessions, knowledge, blobs)
    kb = await knowledge.create("pets")
    ready = await indexer.submit(kb["id"], "pets.md", PETS.encode(), "upload_file")
    lost = await indexer.submit(kb["id"], "lost.txt", b"gone", "text")
    await indexer.cancel(kb["id"])
    await blobs.delete(lost.blob_key)
    async with knowledge.sessions.begin() as session:  # as a worker on another host left them
        await session.execute(
            update(KnowledgeDocument).values(status="indexing", worker="gone.example:1")
        )
    assert await indexer.recover() == 2
    async with asyncio.timeout(60):
        while (await knowledge.documents("pets"))[0]["indexing_status"] != "completed":
            await asyncio.sleep(0.05)
    by_name = {d["name"]: d for d in await knowledge.documents("pets")}
    assert by_name["pets.md"]["indexing_status"] == "completed"
    assert by_name["pets.md"]["id"] == ready.id
    assert by_name["lost.txt"]["indexing_status"] == "error"
    assert by_name["lost.txt"]["error"] == INTERRUPTED
    await indexer.close()


async def test_requeued_work_is_cut_by_the_documents_stored_rule(
    database: Database, knowledge: Knowledge, tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path / "datasets")
    indexer = Indexer(knowledge.sessions, knowledge, blobs)
    kb = await knowledge.create("notes")
    rule = {
        "id": "r1",
        "mode": "custom",
        "rules": {
            "pre_processing_rules": [],
            "segmentation": {"separator": "\\n~\\n", "max_tokens": 100, "chunk_overlap": 0},
        },
    }
    doc = await indexer.submit(kb["id"], "notes", b"one\n~\ntwo\n~\nthree", "text", rule)
    await indexer.cancel(kb["id"])
    async with knowledge.sessions.begin() as session:  # as a crashed worker left it
        await session.execute(
            update(KnowledgeDocument).values(status="indexing", worker="gone.example:1")
        )
    assert await indexer.recover() == 1
    await indexer.drain()
    async with knowledge.sessions() as session:
        stored = await session.get(KnowledgeDocument, doc.id)
        segments = (
            await session.scalars(
                select(KnowledgeSegment.content)
                .where(KnowledgeSegment.document_id == doc.id)
                .order_by(KnowledgeSegment.position)
            )
        ).all()
    assert stored is not None and stored.status == "completed" and stored.process_rule == rule
    assert list(segments) == ["one", "two", "three"]
    await indexer.close()
