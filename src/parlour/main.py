"""create_app(): the FastAPI app; its lifespan builds and closes every resource."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.middleware.cors import CORSMiddleware

from parlour import __version__
from parlour.api import errors
from parlour.api.fastlane import ParlourAPI
from parlour.api.routes import annotations as annotation_routes
from parlour.api.routes import (
    app_info,
    audio,
    chat,
    conversations,
    datasets,
    documents,
    feedbacks,
    files,
    health,
    index,
    messages,
)
from parlour.config import Settings
from parlour.providers.registry import ModelRegistry
from parlour.retrieval.embedders import EmbedderRegistry
from parlour.retrieval.vectors import NumpyStore
from parlour.services.annotations import Annotations
from parlour.services.apps import AppCache, KeyHints, Keys
from parlour.services.background import Background
from parlour.services.chat import ChatService
from parlour.services.conversations import Conversations
from parlour.services.datasets import Datasets
from parlour.services.end_users import EndUsers
from parlour.services.files import Files
from parlour.services.indexing import Indexer
from parlour.services.knowledge import Knowledge
from parlour.services.limits import Limiter, LocalLimiter, RedisLimiter
from parlour.services.messages import Messages
from parlour.services.speech import Speech
from parlour.services.tasks import LocalTaskRegistry, RedisTaskRegistry, TaskRegistry
from parlour.services.workers import Workers, recover_interrupted
from parlour.storage.blobs import LocalBlobStore
from parlour.storage.db import make_engine, make_sessionmaker
from parlour.storage.hotpath import make_hot_path

log = logging.getLogger("parlour")


async def _build(
    state: Any, settings: Settings, models: ModelRegistry | None, stack: AsyncExitStack
) -> None:
    """Every resource of a worker, on ``app.state``; ``stack`` closes them in reverse order."""
    url, schema = settings.resolved_database_url(), settings.database_schema
    engine = make_engine(url, settings.db_pool_size, schema, settings.db_timeout)
    stack.push_async_callback(engine.dispose)
    sessions = make_sessionmaker(engine)
    hot = make_hot_path(url, schema, settings.db_pool_size, settings.db_timeout)
    stack.push_async_callback(hot.close)
    await hot.open()
    registry = models or ModelRegistry(
        settings.openai_base_url,
        settings.openai_api_key,
        settings.openai_timeout,
        {
            "threads": settings.local_threads,
            "n_ctx": settings.local_context,
            "max_waiting": settings.local_queue,
            "max_tokens": settings.local_max_tokens,
        },
        settings.upstream_connect_timeout,
        settings.openai_client,
    )
    stack.push_async_callback(registry.close)
    redis = None
    tasks: TaskRegistry = LocalTaskRegistry()
    limiter: Limiter = LocalLimiter()
    if settings.redis_url:
        redis = Redis.from_url(
            settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0,
            health_check_interval=30,
        )
        stack.push_async_callback(redis.aclose)
        tasks, limiter = RedisTaskRegistry(redis), RedisLimiter(redis)
    await tasks.start()
    stack.push_async_callback(tasks.close)
    workers = Workers(redis)
    await workers.start()
    stack.push_async_callback(workers.close)
    background = Background()
    stack.push_async_callback(background.drain)
    end_users = EndUsers(sessions)
    state.settings, state.engine, state.sessions, state.redis = settings, engine, sessions, redis
    state.hot = hot
    state.models, state.background, state.tasks = registry, background, tasks
    state.end_users, state.app_cache = end_users, AppCache()
    state.keys = Keys(hot, state.app_cache, KeyHints())
    state.knowledge = Knowledge(
        sessions,
        EmbedderRegistry(
            settings.embedding_base_url or settings.openai_base_url,
            settings.embedding_api_key or settings.openai_api_key,
            settings.local_threads,
        ),
        NumpyStore(),
        default_model=settings.embedding_model,
    )
    stack.callback(state.knowledge.close)
    state.indexer = Indexer(
        sessions, state.knowledge, LocalBlobStore(settings.data_dir / "datasets"), workers
    )
    stack.push_async_callback(state.indexer.close)
    state.datasets = Datasets(sessions, state.knowledge, state.indexer)
    state.annotations = Annotations(
        sessions, state.knowledge, background, settings.embedding_model,
        openai_configured=bool(settings.embedding_base_url or settings.openai_base_url),
    )
    state.speech = Speech(settings, sessions)
    stack.push_async_callback(state.speech.close)
    state.files = Files(settings, sessions, LocalBlobStore(settings.data_dir / "files"), end_users)
    state.chat = ChatService(
        settings, sessions, registry, tasks, end_users, background, limiter, workers, hot,
        state.knowledge, files=state.files, annotations=state.annotations,
    )
    stack.push_async_callback(state.chat.drain)  # first at shutdown: answers still saving
    state.conversations = Conversations(sessions, registry, end_users)
    state.messages = Messages(sessions, registry, end_users)
    recovered = await recover_interrupted(sessions, workers)
    if recovered:
        log.warning("marked %d interrupted message(s) as failed", recovered)
    requeued = await state.indexer.recover()
    if requeued:
        log.warning("picked up %d document(s) left unindexed by a stopped worker", requeued)


def create_app(settings: Settings | None = None, models: ModelRegistry | None = None) -> FastAPI:
    """Build the app. ``models`` lets tests hand in a registry holding scripted models."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _build(app.state, settings, models, stack)
            if settings.gc_freeze:
                gc.collect()
                gc.freeze()
            if settings.gc_young > 0:
                gc.set_threshold(settings.gc_young, *gc.get_threshold()[1:])
            yield

    app = ParlourAPI(
        title="parlour",
        version=__version__,
        description="A self-hosted chat-app server that speaks the Dify Chat App Service API.",
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    exposed = ["X-Version", "X-Env", "X-Trace-Id"]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"],
        allow_headers=["Content-Type", "Authorization", "X-App-Code", "X-App-Passport"],
        expose_headers=exposed,
    )
    # what CORSMiddleware adds to a simple (non-preflight) response, for the direct route
    app.cors_headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": ", ".join(exposed),
    }
    app.serve_directly("POST", "/v1/chat-messages", chat.send_chat_message)
    errors.install(app)
    app.include_router(health.router)
    for module in (
        index, chat, conversations, messages, feedbacks, app_info, files, audio,
        annotation_routes, datasets, documents,
    ):
        app.include_router(module.router, prefix="/v1")
    return app
