"""The Knowledge API (Dify's dataset service API) over the Knowledge service: bases and
retrieval here, documents in ``dataset_documents`` (reached as ``Datasets.docs``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.errors import DatasetNameDuplicate, Forbidden, InvalidParam
from parlour.services import dataset_keys
from parlour.services.dataset_documents import DatasetDocuments, open_base
from parlour.services.dataset_keys import DatasetScope
from parlour.services.dataset_shapes import dataset_dict, record_dict
from parlour.services.indexing import Indexer
from parlour.services.knowledge import Knowledge, options_from
from parlour.services.pages import fetch_page, like, page_of, paging
from parlour.storage.models import KnowledgeBase, KnowledgeDocument, KnowledgeSegment, utcnow

MAX_QUERY = 250
METHODS = {"keyword_search": "full_text_search"}  # Dify's economy index: keywords only


def retrieval_settings(base: dict[str, Any], wanted: dict[str, Any] | None) -> dict[str, Any]:
    """A base's retrieval settings with a request's ``retrieval_model`` over them."""
    out = dict(base)
    for key in ("search_method", "top_k", "score_threshold", "score_threshold_enabled", "weights"):
        if wanted and wanted.get(key) is not None:
            out[key] = wanted[key]
    if out.get("search_method"):
        out["search_method"] = METHODS.get(out["search_method"], out["search_method"])
    return out


class Datasets:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], knowledge: Knowledge, indexer: Indexer
    ):
        self.sessions, self.knowledge, self.indexer = sessions, knowledge, indexer
        self.docs = DatasetDocuments(sessions, knowledge, indexer)

    async def authenticate(self, header: str | None) -> DatasetScope:
        async with self.sessions() as session:
            return await dataset_keys.authenticate(session, header)

    async def _kb(self, scope: DatasetScope, dataset_id: str) -> KnowledgeBase:
        return await open_base(self.sessions, scope, dataset_id)

    async def _counts(self, kb_ids: list[str]) -> dict[str, tuple[int, int]]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(
                    KnowledgeDocument.kb_id,
                    func.count(),
                    func.coalesce(func.sum(KnowledgeDocument.word_count), 0),
                )
                .where(KnowledgeDocument.kb_id.in_(kb_ids))
                .group_by(KnowledgeDocument.kb_id)
            )
            return {kb_id: (int(n), int(words)) for kb_id, n, words in rows.all()}

    # --- bases -----------------------------------------------------------------------------

    async def create(self, scope: DatasetScope, req: dict[str, Any]) -> dict[str, Any]:
        if scope.kb_id is not None:
            raise Forbidden("This API key opens one knowledge base; it cannot create others.")
        name = req["name"].strip()
        async with self.sessions() as session:
            if await session.scalar(select(KnowledgeBase.id).where(KnowledgeBase.name == name)):
                raise DatasetNameDuplicate()
        wanted = req.get("retrieval_model") or {}
        economy = req.get("indexing_technique") == "economy"
        settings = retrieval_settings(
            {"search_method": "full_text_search" if economy else "semantic_search"}, wanted
        )
        try:
            options_from(settings)
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidParam(f"retrieval_model: {exc}") from None
        row = await self.knowledge.create(
            name,
            description=req.get("description") or "",
            embedding_model=embedding_spec(
                req.get("embedding_model_provider"), req.get("embedding_model")
            ),
            search_method=settings["search_method"],
        )
        async with self.sessions.begin() as session:
            kb = await session.get(KnowledgeBase, row["id"])
            assert kb is not None
            kb.indexing_technique = "economy" if economy else "high_quality"
            kb.permission = req.get("permission") or "only_me"
            kb.retrieval = {
                **kb.retrieval,
                **{k: v for k, v in settings.items() if k != "score_threshold_enabled"},
            }
            if settings.get("score_threshold_enabled") is False:
                kb.retrieval["score_threshold"] = None
        return dataset_dict(kb)

    async def update(
        self, scope: DatasetScope, dataset_id: str, req: dict[str, Any]
    ) -> dict[str, Any]:
        """PATCH /datasets/{id}: name (409 when another base has it), description,
        permission, indexing technique, retrieval settings, and the embedding model while
        nothing is embedded yet. Other fields of Dify's (members, external) are accepted."""
        kb = await self._kb(scope, dataset_id)
        values: dict[str, Any] = {"updated_at": utcnow()}
        for key in ("name", "description", "permission", "indexing_technique"):
            if req.get(key) is not None:
                values[key] = req[key]
        retrieval = self._retrieval_change(kb, req)
        if retrieval is not None:
            values["retrieval"] = retrieval
        spec = embedding_spec(req.get("embedding_model_provider"), req.get("embedding_model"))
        if spec and spec != kb.embedding_model:
            if kb.dim or (await self._counts([kb.id])).get(kb.id):
                raise InvalidParam(
                    "The embedding model cannot change once the knowledge base has documents."
                )
            values["embedding_model"] = spec
        try:
            async with self.sessions.begin() as session:
                if "name" in values and await session.scalar(
                    select(KnowledgeBase.id).where(
                        KnowledgeBase.name == values["name"], KnowledgeBase.id != kb.id
                    )
                ):
                    raise DatasetNameDuplicate()
                await session.execute(
                    update(KnowledgeBase).where(KnowledgeBase.id == kb.id).values(**values)
                )
        except IntegrityError:  # the same name taken at the same moment
            raise DatasetNameDuplicate() from None
        return await self.get(scope, kb.id)

    @staticmethod
    def _retrieval_change(kb: KnowledgeBase, req: dict[str, Any]) -> dict[str, Any] | None:
        """The base's new retrieval settings, or None if unchanged. Switching to economy
        (keywords only) searches full text unless a retrieval_model says otherwise."""
        wanted = dict(req.get("retrieval_model") or {})
        technique = req.get("indexing_technique")
        if technique and technique != kb.indexing_technique and "search_method" not in wanted:
            economy = technique == "economy"
            wanted["search_method"] = "full_text_search" if economy else "semantic_search"
        if not wanted:
            return None
        settings = retrieval_settings(kb.retrieval or {}, wanted)
        try:
            options_from(settings)
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidParam(f"retrieval_model: {exc}") from None
        out = {k: v for k, v in settings.items() if k != "score_threshold_enabled"}
        if settings.get("score_threshold_enabled") is False:
            out["score_threshold"] = None
        return out

    async def page(
        self, scope: DatasetScope, page_arg: str | None, limit_arg: str | None, keyword: str
    ) -> dict[str, Any]:
        page, limit = paging(page_arg, limit_arg)
        where = []
        if scope.kb_id is not None:
            where.append(KnowledgeBase.id == scope.kb_id)
        if keyword.strip():
            where.append(func.lower(KnowledgeBase.name).like(like(keyword.strip()), escape="\\"))
        order = (KnowledgeBase.created_at.desc(), KnowledgeBase.id)
        async with self.sessions() as session:
            kbs, total = await fetch_page(session, KnowledgeBase, where, order, page, limit)
        counts = await self._counts([k.id for k in kbs])
        data = [dataset_dict(k, *counts.get(k.id, (0, 0))) for k in kbs]
        return page_of(data, page, limit, total)

    async def get(self, scope: DatasetScope, dataset_id: str) -> dict[str, Any]:
        kb = await self._kb(scope, dataset_id)
        return dataset_dict(kb, *(await self._counts([kb.id])).get(kb.id, (0, 0)))

    async def delete(self, scope: DatasetScope, dataset_id: str) -> None:
        kb = await self._kb(scope, dataset_id)
        await self.indexer.cancel(kb.id)
        async with self.sessions() as session:
            blobs = (
                await session.scalars(
                    select(KnowledgeDocument.blob_key).where(
                        KnowledgeDocument.kb_id == kb.id, KnowledgeDocument.blob_key != ""
                    )
                )
            ).all()
        await self.knowledge.delete(kb.id)
        for key in blobs:
            await self.indexer.blobs.delete(key)

    # --- retrieval -------------------------------------------------------------------------

    async def retrieve(
        self, scope: DatasetScope, dataset_id: str, query: str, wanted: dict[str, Any] | None
    ) -> dict[str, Any]:
        kb = await self._kb(scope, dataset_id)
        if not query.strip():
            raise InvalidParam("Query is required.")
        if len(query) > MAX_QUERY:
            raise InvalidParam(f"Query cannot exceed {MAX_QUERY} characters.")
        try:
            options = options_from(retrieval_settings(kb.retrieval, wanted))
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidParam(f"retrieval_model: {exc}") from None
        hits = await self.knowledge.search([kb.id], query, options)
        ids = [h.segment_id for h in hits]
        await self.knowledge.count_hits(ids)
        async with self.sessions() as session:
            rows = {
                s.id: s
                for s in (
                    await session.scalars(
                        select(KnowledgeSegment).where(KnowledgeSegment.id.in_(ids))
                    )
                ).all()
            }
        records = [
            record_dict(rows[h.segment_id], h.document_name, h.score)
            for h in hits
            if h.segment_id in rows
        ]
        return {"query": {"content": query}, "records": records}


def embedding_spec(provider: str | None, model: str | None) -> str:
    """Dify's (provider, model) as parlour's spec; nothing given means the default model."""
    if not model:
        return ""
    if provider in ("local", None, "") and ":" in model:
        return model
    return f"local:{model}" if provider == "local" else f"openai:{model}"
