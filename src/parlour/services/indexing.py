"""Documents indexed in the background (the Knowledge API): queue, progress, restart.

A document is queued with its bytes in the blob store and its row ``waiting``; one job at a time
runs ``Knowledge.add_document`` and records each stage (parsing, splitting, indexing) on the
row, so any worker can answer the indexing status. Work that a stopped worker leaves behind is
queued again at start-up while its bytes are still there, and marked ``error`` otherwise.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.errors import DocumentIndexing, DocumentNotFound, InvalidParam
from parlour.retrieval.chunking import rule_of
from parlour.services.knowledge import DocumentGone, Knowledge
from parlour.services.workers import Workers
from parlour.storage.blobs import BlobStore
from parlour.storage.models import KnowledgeBase, KnowledgeDocument, utcnow

log = logging.getLogger("parlour.indexing")
ACTIVE = ("waiting", "parsing", "splitting", "indexing")
TEXT_TYPE = "document.txt"  # how text sent as text is parsed, whatever its name
INTERRUPTED = "Interrupted: the server stopped during indexing and the document's data is gone."


def new_batch(now: datetime) -> str:
    return f"{now:%Y%m%d%H%M%S}{secrets.randbelow(10**6):06d}"


class Tracker:
    """Writes a document's stage as ``add_document`` reports it. Reports are synchronous, so
    writes run in one task of their own, coalesced, and never touch a finished row."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], doc_id: str):
        self.sessions, self.doc_id = sessions, doc_id
        self.values: dict[str, Any] = {}  # every stage column written so far
        self._pending: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = utcnow()
        if stage == "parsing":
            change: dict[str, Any] = {"status": "parsing", "processing_started_at": now}
        elif stage == "splitting":
            change = {"status": "splitting", "parsing_completed_at": now}
        elif "splitting_completed_at" not in self.values:
            change = {
                "status": "indexing",
                "splitting_completed_at": now,
                "completed_segments": done,
                "total_segments": total,
            }
        else:
            change = {"completed_segments": done, "total_segments": total}
        self.values.update(change)
        self._pending = {**(self._pending or {}), **change}
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._pending:
            values, self._pending = self._pending, None
            try:
                async with self.sessions.begin() as session:
                    await session.execute(
                        update(KnowledgeDocument)
                        .where(
                            KnowledgeDocument.id == self.doc_id,
                            KnowledgeDocument.status.in_(ACTIVE),
                        )
                        .values(**values)
                    )
            except Exception as exc:  # progress is advisory; the outcome is written anyway
                log.warning("could not record indexing progress of %s: %s", self.doc_id, exc)

    async def flush(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        await self.flush()


class Indexer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        knowledge: Knowledge,
        blobs: BlobStore,
        workers: Workers | None = None,
        concurrency: int = 1,
    ):
        self.sessions, self.knowledge, self.blobs = sessions, knowledge, blobs
        self.workers = workers or Workers()
        self._slots = asyncio.Semaphore(concurrency)
        self._jobs: dict[str, tuple[str, asyncio.Task[None]]] = {}  # doc id -> (kb id, job)

    # --- queue ---------------------------------------------------------------------------

    async def submit(
        self,
        kb_id: str,
        name: str,
        data: bytes,
        source: str,
        rule: dict[str, Any] | None = None,
        document_id: str | None = None,
    ) -> KnowledgeDocument:
        """Queue ``data`` as the document ``name`` (a new one, a new version of the one of
        that name, or with ``document_id`` a new version of that one, renamed), cut by
        ``rule`` (Dify's checked ``process_rule``; None: the base's defaults); returns its
        row, ``waiting``."""
        now = utcnow()
        batch = new_batch(now)
        blob_key = f"{kb_id}/{batch}-{uuid.uuid4().hex}"
        await self.blobs.put(blob_key, io.BytesIO(data))
        fresh = {"name": name, "source": source, "batch": batch, "blob_key": blob_key}
        try:
            doc = await self._queue(kb_id, fresh, rule, document_id, now)
        except BaseException:
            await self.blobs.delete(blob_key)
            raise
        self._start(kb_id, doc.id)
        return doc

    async def _queue(
        self,
        kb_id: str,
        given: dict[str, Any],
        rule: dict[str, Any] | None,
        document_id: str | None,
        now: datetime,
    ) -> KnowledgeDocument:
        name = given["name"]
        fresh = {
            **given,
            "process_rule": rule,
            "status": "waiting",
            "worker": self.workers.me,
            "error": None,
            "processing_started_at": None,
            "parsing_completed_at": None,
            "splitting_completed_at": None,
            "completed_at": None,
            "completed_segments": 0,
            "total_segments": 0,
            "updated_at": now,
        }
        try:
            async with self.sessions.begin() as session:
                doc = await session.scalar(  # locked: a delete in flight is waited for
                    select(KnowledgeDocument)
                    .where(KnowledgeDocument.kb_id == kb_id, KnowledgeDocument.name == name)
                    .with_for_update()
                )
                if document_id is not None:
                    doc = await self._replacing(session, kb_id, document_id, doc)
                    fresh["batch"] = doc.batch or fresh["batch"]  # Dify keeps the batch
                if doc is None:
                    last = await session.scalar(
                        select(func.max(KnowledgeDocument.position)).where(
                            KnowledgeDocument.kb_id == kb_id
                        )
                    )
                    doc = KnowledgeDocument(
                        id=str(uuid.uuid4()),
                        kb_id=kb_id,
                        name=name,
                        content_hash="",
                        position=(last or 0) + 1,
                        created_at=now,
                        word_count=0,
                        tokens=0,
                        segment_count=0,
                    )
                    session.add(doc)
                elif doc.status in ACTIVE:
                    raise DocumentIndexing()
                for key, value in fresh.items():
                    setattr(doc, key, value)
        except IntegrityError:  # the same name queued at the same moment
            raise DocumentIndexing() from None
        return doc

    async def _replacing(
        self,
        session: AsyncSession,
        kb_id: str,
        document_id: str,
        same_name: KnowledgeDocument | None,
    ) -> KnowledgeDocument:
        """The document ``document_id`` of the base, to be given new content (and name)."""
        doc = await session.get(KnowledgeDocument, document_id, with_for_update=True)
        if doc is None or doc.kb_id != kb_id:
            raise DocumentNotFound()
        if same_name is not None and same_name.id != doc.id:
            raise InvalidParam(
                f"The knowledge base already has a document named {same_name.name!r}."
            )
        return doc

    def _start(self, kb_id: str, doc_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._job(doc_id))
        self._jobs[doc_id] = (kb_id, task)
        task.add_done_callback(lambda _t: self._jobs.pop(doc_id, None))

    async def _job(self, doc_id: str) -> None:
        async with self._slots:
            async with self.sessions() as session:
                doc = await session.get(KnowledgeDocument, doc_id)
                kb = await session.get(KnowledgeBase, doc.kb_id) if doc is not None else None
            if doc is None or kb is None or doc.status not in ACTIVE:
                return
            if doc.worker != self.workers.me:
                return
            tracker = Tracker(self.sessions, doc_id)
            error: str | None = None
            try:
                tracker("parsing", 0, 0)
                data = b"".join([chunk async for chunk in self.blobs.read(doc.blob_key)])
                await self.knowledge.add_document(
                    doc.kb_id,
                    doc.name,
                    data,
                    source=doc.source,
                    progress=tracker,
                    parse_as=TEXT_TYPE if doc.source == "text" else "",
                    rule=rule_of(doc.process_rule, kb.chunk_tokens, kb.chunk_overlap),
                    document_id=doc.id,
                )
            except asyncio.CancelledError:
                await tracker.stop()
                raise
            except DocumentGone:  # deleted while it was indexed: the delete wins
                log.info("document %s was deleted during indexing", doc_id)
                await tracker.stop()
                await self.blobs.delete(doc.blob_key)
                return
            except Exception as exc:
                log.warning("indexing %s failed: %s", doc.name, exc)
                error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            await tracker.flush()
            await self._finish(doc_id, tracker.values, error)
            await self.blobs.delete(doc.blob_key)

    async def _finish(self, doc_id: str, stages: dict[str, Any], error: str | None) -> None:
        values = {k: v for k, v in stages.items() if k.endswith("_at")}
        values.update(worker=None, blob_key="", completed_at=utcnow())
        if error is not None:
            values.update(status="error", error=error)
        async with self.sessions.begin() as session:
            await session.execute(
                update(KnowledgeDocument).where(KnowledgeDocument.id == doc_id).values(**values)
            )

    async def drain(self) -> None:
        """Wait until the local jobs now running or queued have ended."""
        await asyncio.gather(*(t for _k, t in list(self._jobs.values())), return_exceptions=True)

    async def cancel(self, kb_id: str, doc_id: str | None = None) -> None:
        """Stop local jobs of a base (or of one document) before it is deleted."""
        jobs = [
            t
            for d, (k, t) in list(self._jobs.items())
            if k == kb_id and (doc_id is None or d == doc_id)
        ]
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    # --- start-up and shutdown -------------------------------------------------------------

    async def recover(self) -> int:
        """Queue again the documents whose worker is gone (their bytes still stored); mark the
        others failed; wrap up the ones it finished but did not close. Returns how many."""
        unfinished = KnowledgeDocument.status.in_(ACTIVE)
        unclosed = (KnowledgeDocument.status == "completed") & KnowledgeDocument.worker.is_not(None)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        KnowledgeDocument.id,
                        KnowledgeDocument.kb_id,
                        KnowledgeDocument.status,
                        KnowledgeDocument.worker,
                        KnowledgeDocument.blob_key,
                    ).where(unfinished | unclosed)
                )
            ).all()
        count = 0
        for doc_id, kb_id, status, worker, blob_key in rows:
            if await self.workers.alive(worker):
                continue
            count += 1
            usable = bool(blob_key) and await self.blobs.exists(blob_key)
            values: dict[str, Any] = {"worker": self.workers.me, "status": "waiting"}
            if status == "completed":
                values = {"worker": None, "blob_key": ""}
            elif not usable:
                values = {"worker": None, "status": "error", "error": INTERRUPTED}
            async with self.sessions.begin() as session:
                claimed = await session.execute(
                    update(KnowledgeDocument)
                    .where(
                        KnowledgeDocument.id == doc_id,
                        KnowledgeDocument.status == status,
                        _same_worker(worker),
                    )
                    .values(**values)
                )
            if not getattr(claimed, "rowcount", 0):
                continue  # another worker got there first
            if values.get("status") == "waiting":
                self._start(kb_id, doc_id)
            elif usable:
                await self.blobs.delete(blob_key)
        return count

    async def close(self) -> None:
        """Stop local jobs and hand their documents back to the queue (``waiting``, no
        worker), so the next worker to start picks them up."""
        jobs = [t for _k, t in self._jobs.values()]
        for task in jobs:
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        async with self.sessions.begin() as session:
            await session.execute(
                update(KnowledgeDocument)
                .where(
                    KnowledgeDocument.worker == self.workers.me,
                    KnowledgeDocument.status.in_(ACTIVE),
                )
                .values(status="waiting", worker=None)
            )
            await session.execute(  # finished just as it was stopped
                update(KnowledgeDocument)
                .where(
                    KnowledgeDocument.worker == self.workers.me,
                    KnowledgeDocument.status == "completed",
                )
                .values(worker=None)
            )


def _same_worker(worker: str | None) -> Any:
    if worker is None:
        return KnowledgeDocument.worker.is_(None)
    return KnowledgeDocument.worker == worker
