"""Knowledge fixtures: the real embedded model, loaded once per session; a Knowledge service
on the parametrized database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from parlour.retrieval.embedders import MINILM, EmbedderRegistry
from parlour.retrieval.vectors import NumpyStore
from parlour.services.knowledge import Knowledge
from parlour.storage.db import make_sessionmaker
from tests.conftest import Database


@pytest.fixture(scope="session")
def embedders() -> EmbedderRegistry:
    registry = EmbedderRegistry()
    registry.get(MINILM)
    return registry


@pytest.fixture(scope="session")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


@pytest.fixture
async def knowledge(
    database: Database, embedders: EmbedderRegistry, executor: ThreadPoolExecutor
) -> AsyncIterator[Knowledge]:
    engine = database.engine()
    try:
        yield Knowledge(make_sessionmaker(engine), embedders, NumpyStore(), executor)
    finally:
        await engine.dispose()
