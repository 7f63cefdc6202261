"""Annotations (canned answers) and annotation reply.

CRUD is scoped to the app of the key (Dify looks annotations up by id alone, so one app's key
can change another's). Enabling reply is a job: it embeds every question of the app with the
embedding model and stores the setting; disabling drops both. Jobs live in the database, so
any worker answers their status. In the chat path, ``match`` finds the best annotation for a
query; at or above the app's ``score_threshold`` it is the answer, and the model is not called.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.errors import AnnotationNotFound, InvalidParam
from parlour.retrieval.embedders import embed_batched
from parlour.services.apps import AppContext
from parlour.services.background import Background
from parlour.services.knowledge import Knowledge
from parlour.services.pages import fetch_page, like, page_of, paging
from parlour.storage.models import (
    Annotation,
    AnnotationJob,
    AnnotationSetting,
    App,
    epoch,
    utcnow,
)

log = logging.getLogger("parlour.annotations")
ACTIONS = ("enable", "disable")
# Shown as the author of every annotation: API annotations are made by the app's owner.
OWNER = {"id": "00000000-0000-0000-0000-000000000000", "name": "owner"}


def annotation_dict(row: Annotation) -> dict[str, Any]:
    return {
        "id": row.id,
        "question": row.question,
        "answer": row.answer,
        "hit_count": row.hit_count,
        "created_at": epoch(row.created_at),
    }


@dataclass(slots=True)
class AnnotationHit:
    id: str
    question: str
    answer: str
    score: float

    def reply(self) -> dict[str, Any]:
        """``metadata.annotation_reply`` of ``message_end``."""
        return {"id": self.id, "account": dict(OWNER)}


class Annotations:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        knowledge: Knowledge,
        background: Background,
        default_model: str,
        openai_configured: bool = False,
    ):
        self.sessions = sessions
        self.knowledge = knowledge
        self.background = background
        self.default_model = default_model
        self.openai_configured = openai_configured

    # --- CRUD ------------------------------------------------------------------------------

    async def page(
        self, app: AppContext, page_arg: str | None, limit_arg: str | None, keyword: str
    ) -> dict[str, Any]:
        page, limit = paging(page_arg, limit_arg)
        where = [Annotation.app_id == app.id]
        keyword = keyword.replace("\x00", "")
        if keyword:
            pattern = like(keyword)
            where.append(or_(
                func.lower(Annotation.question).like(pattern, escape="\\"),
                func.lower(Annotation.answer).like(pattern, escape="\\"),
            ))
        order = (Annotation.created_at.desc(), Annotation.id.desc())
        async with self.sessions() as session:
            rows, total = await fetch_page(session, Annotation, where, order, page, limit)
        return page_of([annotation_dict(r) for r in rows], page, limit, total)

    async def create(self, app: AppContext, question: str, answer: str) -> dict[str, Any]:
        now = utcnow()
        row = Annotation(
            id=str(uuid.uuid4()), app_id=app.id, question=question, answer=answer, hit_count=0,
            vector=None, embedding_model="", created_at=now, updated_at=now,
        )
        async with self.sessions.begin() as session:
            session.add(row)
        await self._index_later(app.id, row.id)
        return annotation_dict(row)

    async def update(
        self, app: AppContext, annotation_id: str, question: str, answer: str
    ) -> dict[str, Any]:
        async with self.sessions.begin() as session:
            row = await self._owned(session, app.id, annotation_id)
            changed = row.question != question
            row.question, row.answer, row.updated_at = question, answer, utcnow()
            if changed:
                row.vector, row.embedding_model = None, ""
            result = annotation_dict(row)
        if changed:
            await self._index_later(app.id, annotation_id)
        return result

    async def delete(self, app: AppContext, annotation_id: str) -> None:
        async with self.sessions.begin() as session:
            await session.delete(await self._owned(session, app.id, annotation_id))

    async def _owned(self, session: AsyncSession, app_id: str, annotation_id: str) -> Annotation:
        row = await session.scalar(
            select(Annotation).where(Annotation.id == annotation_id, Annotation.app_id == app_id)
        )
        if row is None:
            raise AnnotationNotFound()
        return row

    # --- annotation reply: enable / disable jobs -------------------------------------------

    def model_for(self, provider: str | None, name: str | None) -> str:
        """Dify names a provider and model; an OpenAI-compatible one is used when the server
        has such an endpoint, otherwise the server's embedding model."""
        if provider and name and provider != "local" and self.openai_configured:
            return f"openai:{name}"
        if provider == "local" and name:
            return f"local:{name}"
        return self.default_model

    async def start_job(
        self, app: AppContext, action: str, threshold: float, model: str
    ) -> dict[str, str]:
        if action not in ACTIONS:
            raise InvalidParam("action must be 'enable' or 'disable'")
        job_id, now = str(uuid.uuid4()), utcnow()
        async with self.sessions.begin() as session:
            session.add(AnnotationJob(
                id=job_id, app_id=app.id, action=action, status="waiting", error="",
                created_at=now, updated_at=now,
            ))
        self.background.spawn(self._run_job(job_id, app.id, action, threshold, model))
        return {"job_id": job_id, "job_status": "waiting"}

    async def job_status(self, app: AppContext, action: str, job_id: str) -> dict[str, str]:
        try:
            job_id = str(uuid.UUID(job_id))
        except ValueError:
            raise InvalidParam("The job does not exist.") from None
        if action not in ACTIONS:
            raise InvalidParam("The job does not exist.")
        async with self.sessions() as session:
            job = await session.scalar(select(AnnotationJob).where(
                AnnotationJob.id == job_id, AnnotationJob.app_id == app.id,
                AnnotationJob.action == action,
            ))
        if job is None:
            raise InvalidParam("The job does not exist.")
        return {"job_id": job.id, "job_status": job.status, "error_msg": job.error}

    async def _run_job(
        self, job_id: str, app_id: str, action: str, threshold: float, model: str
    ) -> None:
        status, error = "completed", ""
        try:
            if action == "enable":
                await self._enable(app_id, threshold, model)
            else:
                await self._disable(app_id)
        except Exception as exc:  # the job's outcome is its status, not a crash
            log.warning("annotation reply %s failed for app %s: %s", action, app_id, exc)
            status, error = "error", f"{type(exc).__name__}: {exc}"
        async with self.sessions.begin() as session:
            await session.execute(update(AnnotationJob).where(AnnotationJob.id == job_id)
                                  .values(status=status, error=error, updated_at=utcnow()))

    async def _enable(self, app_id: str, threshold: float, model: str) -> None:
        async with self.sessions() as session:
            rows = (await session.execute(
                select(Annotation.id, Annotation.question).where(Annotation.app_id == app_id)
            )).all()
        embedder = await self.knowledge.embedder(model)
        vectors = await embed_batched(embedder, [q for _, q in rows], self.knowledge.executor)
        now = utcnow()
        async with self.sessions.begin() as session:
            for (annotation_id, _), vector in zip(rows, vectors, strict=True):
                await session.execute(update(Annotation).where(Annotation.id == annotation_id)
                                      .values(vector=vector.tobytes(), embedding_model=model))
            setting = await session.get(AnnotationSetting, app_id)
            if setting is None:
                session.add(AnnotationSetting(
                    app_id=app_id, score_threshold=threshold, embedding_model=model,
                    created_at=now, updated_at=now,
                ))
            else:
                setting.score_threshold, setting.embedding_model = threshold, model
                setting.updated_at = now
            await _switch(session, app_id, {
                "enabled": True, "score_threshold": threshold,
                "embedding_model": {"embedding_provider_name": model.partition(":")[0],
                                    "embedding_model_name": model.partition(":")[2]},
            })

    async def _disable(self, app_id: str) -> None:
        async with self.sessions.begin() as session:
            setting = await session.get(AnnotationSetting, app_id)
            if setting is not None:
                await session.delete(setting)
            await session.execute(update(Annotation).where(Annotation.app_id == app_id)
                                  .values(vector=None, embedding_model=""))
            await _switch(session, app_id, {"enabled": False})

    async def _index_later(self, app_id: str, annotation_id: str) -> None:
        """A new or changed question of an app with reply on: embed it in the background."""
        async with self.sessions() as session:
            setting = await session.get(AnnotationSetting, app_id)
        if setting is not None:
            self.background.spawn(self._index(annotation_id, setting.embedding_model))

    async def _index(self, annotation_id: str, model: str) -> None:
        async with self.sessions() as session:
            question = await session.scalar(
                select(Annotation.question).where(Annotation.id == annotation_id)
            )
        if question is None:
            return
        embedder = await self.knowledge.embedder(model)
        vector = (await embed_batched(embedder, [question], self.knowledge.executor))[0]
        async with self.sessions.begin() as session:
            await session.execute(update(Annotation).where(Annotation.id == annotation_id)
                                  .values(vector=vector.tobytes(), embedding_model=model))

    # --- the chat path ---------------------------------------------------------------------

    async def match(self, app_id: str, query: str) -> AnnotationHit | None:
        """The app's best annotation for ``query`` if reply is on and it scores at or above
        the threshold; its hit count goes up. ``None`` otherwise."""
        async with self.sessions() as session:
            setting = await session.get(AnnotationSetting, app_id)
            if setting is None:
                return None
            rows = (await session.execute(
                select(Annotation.id, Annotation.question, Annotation.answer, Annotation.vector)
                .where(Annotation.app_id == app_id,
                       Annotation.embedding_model == setting.embedding_model,
                       Annotation.vector.is_not(None))
            )).all()
        if not rows:
            return None
        embedder = await self.knowledge.embedder(setting.embedding_model)
        q = (await embed_batched(embedder, [query], self.knowledge.executor))[0]
        matrix = np.stack([np.frombuffer(r.vector, dtype=np.float32) for r in rows])
        scores = matrix @ q
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < setting.score_threshold:
            return None
        hit = rows[best]
        async with self.sessions.begin() as session:
            await session.execute(update(Annotation).where(Annotation.id == hit.id)
                                  .values(hit_count=Annotation.hit_count + 1))
        return AnnotationHit(hit.id, hit.question, hit.answer, score)


async def _switch(session: AsyncSession, app_id: str, feature: dict[str, Any]) -> None:
    """The app's ``annotation_reply`` feature, so the chat path knows without a query; the
    new ``updated_at`` makes every worker reload the config."""
    app = await session.get(App, app_id)
    if app is None:
        return
    app.config = {**app.config, "annotation_reply": feature}
    app.updated_at = max(utcnow(), app.updated_at + timedelta(microseconds=1))
