"""Knowledge bases: create, list, delete; add documents (incrementally); search; citations.

No database connection is held while a model runs: each use case reads what it needs, lets go
of the connection, parses/embeds in worker threads, then writes in one short transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.errors import InvalidParam, NotFound
from parlour.retrieval import parsing
from parlour.retrieval.chunking import Chunk, Rule, chunk_by_rule
from parlour.retrieval.embedders import MINILM, Embedder, EmbedderRegistry, embed_batched
from parlour.retrieval.fusion import Weights, fuse, method_name, normalise_keyword
from parlour.retrieval.vectors import VectorStore, from_blobs, to_blob
from parlour.storage.fulltext import keyword_search
from parlour.storage.models import (
    KnowledgeBase,
    KnowledgeDocument,
    KnowledgeSegment,
    Message,
    utcnow,
)
from parlour.storage.pgvector import for_database

log = logging.getLogger("parlour.knowledge")
DEFAULT_METHOD = "hybrid_search"  # the best on bench/knowledge_eval.py (bench/KNOWLEDGE.md)
DEFAULT_TOP_K = 4
Progress = Callable[[str, int, int], Any]  # (stage, done, total)


@dataclass(frozen=True, slots=True)
class SearchOptions:
    method: str = DEFAULT_METHOD
    top_k: int = DEFAULT_TOP_K
    score_threshold: float | None = None
    weights: Weights = Weights()


@dataclass(slots=True)
class Hit:
    segment_id: str
    score: float
    kb_id: str = ""
    kb_name: str = ""
    document_id: str = ""
    document_name: str = ""
    position: int = 0
    title: str = ""
    content: str = ""
    word_count: int = 0
    hit_count: int = 0
    content_hash: str = ""


def kb_dict(kb: KnowledgeBase, documents: int = 0, words: int = 0) -> dict[str, Any]:
    return {
        "id": kb.id,
        "name": kb.name,
        "description": kb.description,
        "embedding_model": kb.embedding_model,
        "chunk_tokens": kb.chunk_tokens,
        "chunk_overlap": kb.chunk_overlap,
        "retrieval": kb.retrieval,
        "document_count": documents,
        "word_count": words,
        "created_at": int(kb.created_at.timestamp()),
    }


def document_dict(doc: KnowledgeDocument) -> dict[str, Any]:
    return {
        "id": doc.id,
        "name": doc.name,
        "data_source_type": doc.source,
        "indexing_status": doc.status,
        "error": doc.error,
        "word_count": doc.word_count,
        "tokens": doc.tokens,
        "segment_count": doc.segment_count,
        "created_at": int(doc.created_at.timestamp()),
    }


def options_from(retrieval: dict[str, Any]) -> SearchOptions:
    """A base's (or an app's) retrieval settings, in Dify's vocabulary."""
    weights = Weights()
    raw = retrieval.get("weights") or {}
    if raw:
        vector = raw.get("vector_setting", {}).get("vector_weight", raw.get("vector"))
        keyword = raw.get("keyword_setting", {}).get("keyword_weight", raw.get("keyword"))
        weights = Weights(
            float(vector if vector is not None else weights.vector),
            float(keyword if keyword is not None else weights.keyword),
        )
    threshold = retrieval.get("score_threshold")
    if retrieval.get("score_threshold_enabled") is False:
        threshold = None
    return SearchOptions(
        method=method_name(retrieval.get("search_method") or DEFAULT_METHOD),
        top_k=int(retrieval.get("top_k") or DEFAULT_TOP_K),
        score_threshold=float(threshold) if threshold is not None else None,
        weights=weights,
    )


class DocumentGone(Exception):
    """The document being indexed was deleted meanwhile: nothing of it was written."""


class Knowledge:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        embedders: EmbedderRegistry,
        store: VectorStore,
        executor: Executor | None = None,
        default_model: str = MINILM,
    ):
        self.sessions = sessions
        self.embedders = embedders
        self.store = for_database(sessions, store)  # pgvector on PostgreSQL
        self._owned = executor is None
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="embed")
        self.default_model = default_model
        self._reload = asyncio.Lock()

    def close(self) -> None:
        if self._owned:
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def embedder(self, spec: str) -> Embedder:
        return await self._run(self.embedders.get, spec)  # type: ignore[no-any-return]

    # --- bases -----------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        *,
        description: str = "",
        embedding_model: str = "",
        chunk_tokens: int = 240,
        chunk_overlap: int = 40,
        search_method: str = "",
    ) -> dict[str, Any]:
        if not name.strip():
            raise InvalidParam("name is required")
        if not 16 <= chunk_tokens <= 4000 or not 0 <= chunk_overlap < chunk_tokens:
            raise InvalidParam("need 16 <= chunk_tokens <= 4000 and 0 <= overlap < chunk_tokens")
        try:
            method = method_name(search_method or DEFAULT_METHOD)
        except ValueError as exc:
            raise InvalidParam(str(exc)) from exc
        kb = KnowledgeBase(
            id=str(uuid.uuid4()),
            name=name.strip(),
            description=description,
            embedding_model=embedding_model or self.default_model,
            dim=0,
            chunk_tokens=chunk_tokens,
            chunk_overlap=chunk_overlap,
            retrieval={"search_method": method, "top_k": DEFAULT_TOP_K, "score_threshold": None},
            index_version=0,
        )
        async with self.sessions.begin() as session:
            taken = await session.scalar(
                select(KnowledgeBase.id).where(KnowledgeBase.name == kb.name)
            )
            if taken:
                raise InvalidParam(f"A knowledge base named {kb.name!r} already exists.")
            session.add(kb)
        return kb_dict(kb)

    async def list_bases(self) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            kbs = (
                await session.scalars(select(KnowledgeBase).order_by(KnowledgeBase.created_at))
            ).all()
            counts = dict(
                (
                    await session.execute(
                        select(KnowledgeDocument.kb_id, func.count()).group_by(
                            KnowledgeDocument.kb_id
                        )
                    )
                ).all()
            )
            words = dict(
                (
                    await session.execute(
                        select(
                            KnowledgeDocument.kb_id, func.sum(KnowledgeDocument.word_count)
                        ).group_by(KnowledgeDocument.kb_id)
                    )
                ).all()
            )
        return [kb_dict(k, int(counts.get(k.id, 0)), int(words.get(k.id) or 0)) for k in kbs]

    async def get(self, ref: str) -> KnowledgeBase:
        async with self.sessions() as session:
            return await find_kb(session, ref)

    async def delete(self, ref: str) -> dict[str, Any]:
        async with self.sessions.begin() as session:
            kb = await find_kb(session, ref)
            await session.execute(delete(KnowledgeSegment).where(KnowledgeSegment.kb_id == kb.id))
            await session.execute(delete(KnowledgeDocument).where(KnowledgeDocument.kb_id == kb.id))
            await session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == kb.id))
        await self.store.drop(kb.id)
        return kb_dict(kb)

    async def documents(self, ref: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            kb = await find_kb(session, ref)
            rows = await session.scalars(
                select(KnowledgeDocument)
                .where(KnowledgeDocument.kb_id == kb.id)
                .order_by(KnowledgeDocument.created_at, KnowledgeDocument.name)
            )
            return [document_dict(d) for d in rows.all()]

    # --- documents -------------------------------------------------------------------------

    async def add_document(
        self,
        ref: str,
        name: str,
        data: bytes,
        *,
        source: str = "upload_file",
        progress: Progress | None = None,
        parse_as: str = "",
        rule: Rule | None = None,
        document_id: str | None = None,
    ) -> dict[str, Any]:
        """Index ``data`` (a file's bytes; ``name``, or ``parse_as`` when given, tells its
        type) under ``name``, cut by ``rule`` (else the base's chunk size and overlap).
        ``progress`` hears ``splitting`` once the text is out, then ``embedding`` with counts.

        Unchanged bytes do no work; changed ones re-embed only the chunks whose hash is new.
        With ``document_id`` (a document queued by the Knowledge API) that row is written, and
        only while it exists: deleted meanwhile, nothing is written and ``DocumentGone`` is
        raised."""
        digest = hashlib.sha256(data).hexdigest()
        async with self.sessions() as session:
            kb = await find_kb(session, ref)
            doc = await _existing(session, kb.id, name, document_id)
            if doc is not None and doc.content_hash == digest and doc.status == "completed":
                return {**document_dict(doc), "result": "unchanged", "embedded": 0}
            old: dict[str, list[str]] = {}
            if doc is not None:
                rows = await session.execute(
                    select(KnowledgeSegment.content_hash, KnowledgeSegment.id).where(
                        KnowledgeSegment.document_id == doc.id
                    )
                )
                for h, sid in rows.all():
                    old.setdefault(h, []).append(sid)
        try:
            text = await self._run(parsing.to_text, parse_as or name, data)
        except parsing.UnsupportedDocument as exc:
            raise InvalidParam(str(exc)) from exc
        if progress:
            progress("splitting", 0, 0)
        embedder = await self.embedder(kb.embedding_model)
        rule = rule or Rule(kb.chunk_tokens, kb.chunk_overlap)
        rule = replace(rule, max_tokens=min(rule.max_tokens, embedder.max_tokens))  # embedded whole
        chunks: list[Chunk] = await self._run(chunk_by_rule, text, embedder.spans, rule)
        reuse: dict[int, str] = {}
        for chunk in chunks:
            ids = old.get(chunk.hash)
            if ids:
                reuse[chunk.position] = ids.pop()
        fresh = [c for c in chunks if c.position not in reuse]
        if progress:
            progress("embedding", 0, len(fresh))
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress("embedding", done, len(fresh))

        vectors = await embed_batched(
            embedder, [c.embed_text for c in fresh], self.executor, progress=step
        )
        stale = [sid for ids in old.values() for sid in ids]
        saved = await self._save(
            kb, doc, name, source, digest, chunks, fresh, vectors, reuse, stale, document_id
        )
        result = "added" if doc is None else "updated"
        return {**document_dict(saved), "result": result, "embedded": len(fresh)}

    async def _save(
        self,
        kb: KnowledgeBase,
        doc: KnowledgeDocument | None,
        name: str,
        source: str,
        digest: str,
        chunks: Sequence[Chunk],
        fresh: Sequence[Chunk],
        vectors: np.ndarray,
        reuse: dict[int, str],
        stale: list[str],
        queued: str | None = None,
    ) -> KnowledgeDocument:
        now = utcnow()
        async with self.sessions.begin() as session:
            if queued is not None:  # first statement: locks the row (PostgreSQL) or the file
                claimed = await session.execute(
                    update(KnowledgeDocument)
                    .where(KnowledgeDocument.id == queued)
                    .values(updated_at=now)
                )
                if not getattr(claimed, "rowcount", 0):
                    raise DocumentGone(queued)  # deleted meanwhile: roll back, write nothing
            if doc is None:
                doc = KnowledgeDocument(
                    id=str(uuid.uuid4()), kb_id=kb.id, name=name, created_at=now
                )
                session.add(doc)
            else:
                doc = await session.merge(doc)
            doc.source, doc.content_hash, doc.status, doc.error = source, digest, "completed", None
            doc.word_count = sum(len(c.content.split()) for c in chunks)
            doc.tokens = sum(c.tokens for c in chunks)
            doc.segment_count, doc.updated_at = len(chunks), now
            await session.flush()
            if stale:
                await session.execute(
                    delete(KnowledgeSegment).where(KnowledgeSegment.id.in_(stale))
                )
            for chunk in chunks:
                if chunk.position in reuse:
                    await session.execute(
                        update(KnowledgeSegment)
                        .where(KnowledgeSegment.id == reuse[chunk.position])
                        .values(position=chunk.position)
                    )
            for chunk, vector in zip(fresh, vectors, strict=True):
                session.add(
                    KnowledgeSegment(
                        id=str(uuid.uuid4()),
                        kb_id=kb.id,
                        document_id=doc.id,
                        position=chunk.position,
                        title=chunk.title,
                        content=chunk.content,
                        content_hash=chunk.hash,
                        word_count=len(chunk.content.split()),
                        tokens=chunk.tokens,
                        hit_count=0,
                        vector=to_blob(vector),
                        created_at=now,
                    )
                )
            values: dict[str, Any] = {
                "index_version": KnowledgeBase.index_version + 1,
                "updated_at": now,
            }
            if len(fresh) and not kb.dim:
                values["dim"] = int(vectors.shape[1])
            await session.execute(
                update(KnowledgeBase).where(KnowledgeBase.id == kb.id).values(**values)
            )
        return doc

    async def delete_document(self, ref: str, document_id: str) -> None:
        async with self.sessions.begin() as session:
            kb = await find_kb(session, ref)
            found = await session.execute(
                delete(KnowledgeDocument).where(
                    KnowledgeDocument.kb_id == kb.id, KnowledgeDocument.id == document_id
                )
            )
            if not getattr(found, "rowcount", 1):
                raise NotFound("Document not found")
            await session.execute(
                delete(KnowledgeSegment).where(KnowledgeSegment.document_id == document_id)
            )
            await session.execute(
                update(KnowledgeBase)
                .where(KnowledgeBase.id == kb.id)
                .values(index_version=KnowledgeBase.index_version + 1, updated_at=utcnow())
            )

    # --- search ----------------------------------------------------------------------------

    async def search(
        self,
        refs: Sequence[str],
        query: str,
        options: SearchOptions | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """The best ``top_k`` segments over the given bases, scores in 0..1, best first.

        BM25 scores are scaled by the best one over *all* the bases searched, so bases compete
        on one scale."""
        async with self.sessions() as session:
            kbs = [await find_kb(session, r) for r in refs]
        if not kbs or not query.strip():
            return []
        queries: dict[str, np.ndarray] = {}
        found: list[tuple[KnowledgeBase, SearchOptions, dict[str, float], dict[str, float]]] = []
        for kb in kbs:
            opts = options or options_from({**kb.retrieval, **(overrides or {})})
            if opts.method != "full_text_search" and kb.embedding_model not in queries:
                embedder = await self.embedder(kb.embedding_model)
                queries[kb.embedding_model] = (await self._run(embedder.embed, [query]))[0]
            dense, keyword = await self._search_kb(kb, query, queries.get(kb.embedding_model), opts)
            found.append((kb, opts, dense, keyword))
        top = max((max(kw.values(), default=0.0) for *_, kw in found), default=0.0)
        hits: list[Hit] = []
        for kb, opts, dense, keyword in found:
            if opts.method == "semantic_search":
                scored = [(sid, max(v, 0.0)) for sid, v in dense.items()]
            elif opts.method == "full_text_search":
                scored = list(normalise_keyword(keyword, top).items())
            else:
                scored = fuse(dense, keyword, opts.weights, top)
            hits += [Hit(sid, v, kb.id) for sid, v in scored]
        opts = options or options_from({**kbs[0].retrieval, **(overrides or {})})
        hits.sort(key=lambda h: (-h.score, h.segment_id))
        if opts.score_threshold is not None:
            hits = [h for h in hits if h.score >= opts.score_threshold]
        return await self._describe(hits[: opts.top_k], {k.id: k.name for k in kbs})

    async def _search_kb(
        self, kb: KnowledgeBase, query: str, vector: np.ndarray | None, opts: SearchOptions
    ) -> tuple[dict[str, float], dict[str, float]]:
        """(dense cosine, raw keyword relevance) of one base's candidates."""
        wide = max(opts.top_k * 5, 20)
        keyword: dict[str, float] = {}
        if opts.method != "semantic_search":
            async with self.sessions() as session:
                keyword = await keyword_search(session, kb.id, query, wide)
        if opts.method == "full_text_search" or vector is None:
            return {}, keyword
        await self._ensure_loaded(kb)
        dense = dict(await self.store.search(kb.id, vector, wide))
        if keyword:
            missing = [s for s in keyword if s not in dense]
            dense.update(await self.store.scores(kb.id, vector, missing))
        return dense, keyword

    async def _ensure_loaded(self, kb: KnowledgeBase) -> None:
        """Bring the store's index of a base up to the base's index version."""

        async def read() -> tuple[list[str], np.ndarray]:
            async with self.sessions() as session:
                rows = (
                    await session.execute(
                        select(KnowledgeSegment.id, KnowledgeSegment.vector)
                        .where(KnowledgeSegment.kb_id == kb.id)
                        .order_by(KnowledgeSegment.id)
                    )
                ).all()
            matrix = await self._run(from_blobs, [r.vector for r in rows], kb.dim or 1)
            return [r.id for r in rows], matrix

        async with self._reload:
            async with self.sessions() as session:
                version = await session.scalar(
                    select(KnowledgeBase.index_version).where(KnowledgeBase.id == kb.id)
                )
            if version is not None:
                await self.store.sync(kb.id, version, read)

    async def _describe(self, hits: list[Hit], names: dict[str, str]) -> list[Hit]:
        if not hits:
            return []
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(KnowledgeSegment, KnowledgeDocument.name)
                    .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeSegment.document_id)
                    .where(KnowledgeSegment.id.in_([h.segment_id for h in hits]))
                )
            ).all()
        found = {seg.id: (seg, doc_name) for seg, doc_name in rows}
        out: list[Hit] = []
        for h in hits:
            if h.segment_id not in found:
                continue  # deleted since the index was loaded
            seg, doc_name = found[h.segment_id]
            out.append(
                Hit(
                    seg.id,
                    round(h.score, 6),
                    seg.kb_id,
                    names.get(seg.kb_id, ""),
                    seg.document_id,
                    doc_name,
                    seg.position,
                    seg.title,
                    seg.content,
                    seg.word_count,
                    seg.hit_count,
                    seg.content_hash,
                )
            )
        return out

    # --- chat ------------------------------------------------------------------------------

    async def retrieve(self, dataset_configs: dict[str, Any], query: str) -> list[Hit]:
        """Retrieval for a chat turn, from an app's Dify-shaped ``dataset_configs``.

        Bases are named by id (or by name, for imported Dify apps); a missing one is skipped
        with a warning rather than failing the conversation."""
        refs = dataset_refs(dataset_configs)
        if not refs:
            return []
        async with self.sessions() as session:
            found = []
            for ref in refs:
                try:
                    found.append((await find_kb(session, ref)).id)
                except NotFound:
                    log.warning("the app names knowledge base %r, which does not exist", ref)
        if not found:
            return []
        hits = await self.search(found, query, overrides=app_overrides(dataset_configs))
        await self.count_hits([h.segment_id for h in hits])
        return hits

    async def count_hits(self, segment_ids: list[str]) -> None:
        """One more hit for each segment a retrieval returned (Dify's ``hit_count``)."""
        if not segment_ids:
            return
        async with self.sessions.begin() as session:
            await session.execute(
                update(KnowledgeSegment)
                .where(KnowledgeSegment.id.in_(segment_ids))
                .values(hit_count=KnowledgeSegment.hit_count + 1)
            )

    async def save_citations(self, message_id: str, resources: list[dict[str, Any]]) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(retriever_resources=resources)
            )


def dataset_refs(dataset_configs: dict[str, Any]) -> list[str]:
    """Ids (or names) under ``datasets.datasets[].dataset`` that are enabled."""
    inner = (dataset_configs.get("datasets") or {}).get("datasets") or []
    refs: list[str] = []
    for item in inner:
        dataset = item.get("dataset", item) if isinstance(item, dict) else {}
        if dataset.get("enabled", True) is False:
            continue
        ref = dataset.get("id") or dataset.get("name")
        if ref and ref not in refs:
            refs.append(str(ref))
    return refs


def app_overrides(dataset_configs: dict[str, Any]) -> dict[str, Any]:
    """The app's top_k, score_threshold (unless disabled), search_method and weights."""
    out: dict[str, Any] = {}
    for key in ("top_k", "search_method", "weights"):
        if dataset_configs.get(key):
            out[key] = dataset_configs[key]
    if dataset_configs.get("score_threshold_enabled") is not False:
        if dataset_configs.get("score_threshold") is not None:
            out["score_threshold"] = dataset_configs["score_threshold"]
    return out


def context_of(hits: Sequence[Hit]) -> str:
    """The retrieved chunks as the prompt's context, best first."""
    return "\n\n".join(f"{h.title}\n{h.content}" if h.title else h.content for h in hits)


def citations(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """Dify's RetrieverResource objects: one per document (its best chunk), numbered 1..n."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for h in hits:
        if (h.kb_id, h.document_id) in seen:
            continue
        seen.add((h.kb_id, h.document_id))
        out.append(
            {
                "position": len(out) + 1,
                "dataset_id": h.kb_id,
                "dataset_name": h.kb_name,
                "document_id": h.document_id,
                "document_name": h.document_name,
                "data_source_type": "upload_file",
                "segment_id": h.segment_id,
                "retriever_from": "api",
                "score": h.score,
                "hit_count": h.hit_count,
                "word_count": h.word_count,
                "segment_position": h.position,
                "index_node_hash": h.content_hash,
                "content": h.content,
                "page": None,
                "doc_metadata": None,
                "title": h.document_name,
                "files": None,
                "summary": None,
            }
        )
    return out


_LISTED = (
    "position",
    "dataset_id",
    "dataset_name",
    "document_id",
    "document_name",
    "data_source_type",
    "segment_id",
    "score",
    "hit_count",
    "word_count",
    "segment_position",
    "index_node_hash",
    "content",
    "summary",
)


def listed_citations(
    stored: list[dict[str, Any]] | None, message_id: str, created_at: int
) -> list[dict[str, Any]]:
    """Stored citations as GET /messages shows them (a fresh random ``id`` each read, as Dify)."""
    return [
        {
            "id": str(uuid.uuid4()),
            "message_id": message_id,
            **{k: r.get(k) for k in _LISTED},
            "created_at": created_at,
        }
        for r in stored or []
    ]


async def _existing(
    session: AsyncSession, kb_id: str, name: str, document_id: str | None
) -> KnowledgeDocument | None:
    """The document a new version goes to: ``document_id`` (which must still be there) or
    the one named ``name``, if any."""
    if document_id is None:
        return await session.scalar(
            select(KnowledgeDocument).where(
                KnowledgeDocument.kb_id == kb_id, KnowledgeDocument.name == name
            )
        )
    doc = await session.get(KnowledgeDocument, document_id)
    if doc is None or doc.kb_id != kb_id:
        raise DocumentGone(document_id)
    return doc


async def find_kb(session: AsyncSession, ref: str) -> KnowledgeBase:
    """A knowledge base by id or by name."""
    kb = await session.get(KnowledgeBase, ref)
    if kb is None:
        kb = await session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == ref))
    if kb is None:
        raise NotFound(f"Knowledge base {ref!r} not found")
    return kb
