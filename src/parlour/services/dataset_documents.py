"""The Knowledge API's documents: created or updated (queued for background indexing, cut by
Dify's process rule), listed, shown, deleted; their indexing status and segments."""

from __future__ import annotations

import uuid
from pathlib import PurePath
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.errors import (
    DatasetNotFound,
    DocumentIndexing,
    DocumentNotFound,
    InvalidParam,
    NotFound,
    UnsupportedFileType,
)
from parlour.retrieval.chunking import check_process_rule
from parlour.retrieval.parsing import EXTENSIONS
from parlour.services.dataset_keys import DatasetScope
from parlour.services.dataset_shapes import (
    DOC_FORM,
    detail_dict,
    document_dict,
    segment_dict,
    status_dict,
)
from parlour.services.indexing import ACTIVE, Indexer
from parlour.services.knowledge import Knowledge
from parlour.services.pages import fetch_page, like, page_of, paging
from parlour.storage.models import KnowledgeBase, KnowledgeDocument, KnowledgeSegment, utcnow

METADATA = ("all", "only", "without")  # GET …/documents/{id}?metadata=


def process_rule(raw: Any) -> dict[str, Any]:
    """Dify's ``process_rule`` checked (400 ``invalid_param`` with Dify's messages) and given
    an id; none given is ``automatic``: the base's own chunking."""
    try:
        checked = check_process_rule({"mode": "automatic"} if raw is None else raw)
    except ValueError as exc:
        raise InvalidParam(str(exc)) from None
    return {"id": str(uuid.uuid4()), **checked}


async def open_base(
    sessions: async_sessionmaker[AsyncSession], scope: DatasetScope, dataset_id: str
) -> KnowledgeBase:
    """The base ``dataset_id`` if the key opens it; else 404, as a missing one."""
    async with sessions() as session:
        kb = await session.get(KnowledgeBase, dataset_id)
    if kb is None or not scope.allows(kb.id):
        raise DatasetNotFound()
    return kb


class DatasetDocuments:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], knowledge: Knowledge, indexer: Indexer
    ):
        self.sessions, self.knowledge, self.indexer = sessions, knowledge, indexer

    async def _kb(self, scope: DatasetScope, dataset_id: str) -> KnowledgeBase:
        return await open_base(self.sessions, scope, dataset_id)

    async def add_text(
        self, scope: DatasetScope, dataset_id: str, name: str, text: str, rule: Any = None
    ) -> dict[str, Any]:
        kb = await self._kb(scope, dataset_id)
        checked = process_rule(rule)
        doc = await self.indexer.submit(kb.id, name, text.encode("utf-8"), "text", checked)
        return {"document": document_dict(doc), "batch": doc.batch}

    async def add_file(
        self, scope: DatasetScope, dataset_id: str, filename: str, data: bytes, rule: Any = None
    ) -> dict[str, Any]:
        kb = await self._kb(scope, dataset_id)
        if PurePath(filename).suffix.lower() not in EXTENSIONS:
            raise UnsupportedFileType()
        checked = process_rule(rule)
        doc = await self.indexer.submit(kb.id, filename, data, "upload_file", checked)
        return {"document": document_dict(doc), "batch": doc.batch}

    async def update_document(
        self,
        scope: DatasetScope,
        dataset_id: str,
        doc_id: str,
        name: str | None,
        content: tuple[str, bytes] | None,
        rule: Any = None,
    ) -> dict[str, Any]:
        """update-by-text / update-by-file: new content (``(source, bytes)``, re-indexed in
        the background under the same id and batch) and/or a new name. Without content only
        the name changes: the original bytes are not kept, so a new rule needs them again."""
        kb = await self._kb(scope, dataset_id)
        doc = await self._document(kb, doc_id)
        if content is None:
            if rule is None and not name:
                raise InvalidParam("Data source or Process rule is required")
            if rule is not None:
                raise InvalidParam("A new process_rule needs the document's text or file again.")
            if name and name != doc.name:
                doc = await self._rename(kb, doc, name)
            return {"document": document_dict(doc), "batch": doc.batch}
        source, data = content
        if source == "upload_file" and PurePath(name or "").suffix.lower() not in EXTENSIONS:
            raise UnsupportedFileType()
        checked = doc.process_rule if rule is None else process_rule(rule)
        new = await self.indexer.submit(kb.id, name or doc.name, data, source, checked, doc.id)
        return {"document": document_dict(new), "batch": new.batch}

    async def _rename(
        self, kb: KnowledgeBase, doc: KnowledgeDocument, name: str
    ) -> KnowledgeDocument:
        if doc.status in ACTIVE:
            raise DocumentIndexing()
        try:
            async with self.sessions.begin() as session:
                if await session.scalar(
                    select(KnowledgeDocument.id).where(
                        KnowledgeDocument.kb_id == kb.id, KnowledgeDocument.name == name
                    )
                ):
                    raise InvalidParam(f"The knowledge base already has a document named {name!r}.")
                await session.execute(
                    update(KnowledgeDocument)
                    .where(KnowledgeDocument.id == doc.id)
                    .values(name=name, updated_at=utcnow())
                )
        except IntegrityError:
            raise InvalidParam(
                f"The knowledge base already has a document named {name!r}."
            ) from None
        return await self._document(kb, doc.id)

    async def document(
        self, scope: DatasetScope, dataset_id: str, doc_id: str, metadata: str
    ) -> dict[str, Any]:
        """GET …/documents/{document_id} (``metadata``: all, only or without)."""
        kb = await self._kb(scope, dataset_id)
        if metadata not in METADATA:
            raise InvalidParam(f"Invalid metadata value: {metadata}")
        doc = await self._document(kb, doc_id)
        if metadata == "only":
            return {"id": doc.id, "doc_type": None, "doc_metadata": []}
        async with self.sessions() as session:
            hits = await session.scalar(
                select(func.sum(KnowledgeSegment.hit_count)).where(
                    KnowledgeSegment.document_id == doc.id
                )
            )
            recent = await session.scalars(
                select(KnowledgeDocument.process_rule)
                .where(KnowledgeDocument.kb_id == kb.id)
                .order_by(KnowledgeDocument.updated_at.desc())
                .limit(50)
            )
            latest = next((r for r in recent.all() if r), None)  # the base's latest rule
        out = detail_dict(kb, doc, latest, int(hits or 0))
        if metadata == "without":
            del out["doc_type"], out["doc_metadata"]
        return out

    async def documents(
        self,
        scope: DatasetScope,
        dataset_id: str,
        page_arg: str | None,
        limit_arg: str | None,
        keyword: str,
    ) -> dict[str, Any]:
        kb = await self._kb(scope, dataset_id)
        page, limit = paging(page_arg, limit_arg)
        where = [KnowledgeDocument.kb_id == kb.id]
        if keyword.strip():
            pattern = like(keyword.strip())
            where.append(func.lower(KnowledgeDocument.name).like(pattern, escape="\\"))
        order = (KnowledgeDocument.created_at.desc(), KnowledgeDocument.position.desc())
        async with self.sessions() as session:
            docs, total = await fetch_page(session, KnowledgeDocument, where, order, page, limit)
            hits = dict(
                (
                    await session.execute(
                        select(KnowledgeSegment.document_id, func.sum(KnowledgeSegment.hit_count))
                        .where(KnowledgeSegment.document_id.in_([d.id for d in docs]))
                        .group_by(KnowledgeSegment.document_id)
                    )
                ).all()
            )
        data = [document_dict(d, int(hits.get(d.id) or 0)) for d in docs]
        return page_of(data, page, limit, total)

    async def _document(self, kb: KnowledgeBase, document_id: str) -> KnowledgeDocument:
        async with self.sessions() as session:
            doc = await session.get(KnowledgeDocument, document_id)
        if doc is None or doc.kb_id != kb.id:
            raise DocumentNotFound()
        return doc

    async def delete_document(self, scope: DatasetScope, dataset_id: str, doc_id: str) -> None:
        kb = await self._kb(scope, dataset_id)
        doc = await self._document(kb, doc_id)
        await self.indexer.cancel(kb.id, doc.id)
        await self.knowledge.delete_document(kb.id, doc.id)
        if doc.blob_key:
            await self.indexer.blobs.delete(doc.blob_key)

    async def indexing_status(
        self, scope: DatasetScope, dataset_id: str, batch: str
    ) -> dict[str, Any]:
        kb = await self._kb(scope, dataset_id)
        async with self.sessions() as session:
            docs = (
                await session.scalars(
                    select(KnowledgeDocument)
                    .where(KnowledgeDocument.kb_id == kb.id, KnowledgeDocument.batch == batch)
                    .order_by(KnowledgeDocument.position)
                )
            ).all()
        if not docs:
            raise NotFound("Documents not found.")
        return {"data": [status_dict(d) for d in docs]}

    async def segments(
        self, scope: DatasetScope, dataset_id: str, doc_id: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        kb = await self._kb(scope, dataset_id)
        doc = await self._document(kb, doc_id)
        page, limit = paging(args.get("page"), args.get("limit"))
        where = [KnowledgeSegment.document_id == doc.id]
        keyword = (args.get("keyword") or "").strip()
        if keyword:
            where.append(func.lower(KnowledgeSegment.content).like(like(keyword), escape="\\"))
        statuses = [s for s in args.get("status") or [] if s]
        if statuses and "completed" not in statuses:
            where.append(KnowledgeSegment.id.is_(None))  # every stored segment is completed
        async with self.sessions() as session:
            rows, total = await fetch_page(
                session, KnowledgeSegment, where, [KnowledgeSegment.position], page, limit
            )
        return {
            **page_of([segment_dict(s) for s in rows], page, limit, total),
            "doc_form": DOC_FORM,
        }
