"""Knowledge fixtures: the real embedded model, loaded once per session; a Knowledge service
on the parametrized database (SQLite and PostgreSQL); a PostgreSQL 16 with pgvector (the
``pgserver`` wheel), started once per session."""

from __future__ import annotations

import importlib
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from parlour.retrieval.embedders import MINILM, EmbedderRegistry
from parlour.retrieval.vectors import NumpyStore
from parlour.services.knowledge import Knowledge
from parlour.storage.db import make_sessionmaker
from tests.conftest import Database, pg_schema


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


@pytest.fixture(scope="session")
def pgvector_url() -> Iterator[str]:
    """A PostgreSQL with the ``vector`` extension created in ``public``.

    Its data lives outside pytest's temporary root, which pytest keeps private (0700) while
    the server runs as another user when the tests run as root."""
    with warnings.catch_warnings():  # where XDG_RUNTIME_DIR is unset, it says it uses /tmp
        warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR")
        pgserver = importlib.import_module("pgserver")
    parent = Path(tempfile.mkdtemp(prefix="parlour-pgvector-"))
    parent.chmod(0o755)
    server = pgserver.get_server(parent / "data", cleanup_mode="delete")
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        yield server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
async def pgvector_database(pgvector_url: str) -> AsyncIterator[Database]:
    """A fresh, migrated schema of its own on the pgvector server."""
    async with pg_schema(pgvector_url) as db:
        yield db
