"""Fixtures: a migrated database (SQLite file or a PostgreSQL schema of its own), a real
uvicorn server on a free port, and a registry of scripted models."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from typer.testing import CliRunner

from parlour.cli import cli
from parlour.config import Settings
from parlour.main import create_app
from parlour.providers.fake import FakeChatModel
from parlour.providers.registry import ModelRegistry
from parlour.services import apps as apps_service
from parlour.storage.db import make_engine, make_sessionmaker
from parlour.storage.migrate import upgrade

PG_URL = os.environ.get("PARLOUR_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@dataclass
class Database:
    url: str
    schema: str = ""

    def engine(self) -> AsyncEngine:
        return make_engine(self.url, schema=self.schema)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database per test: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}")
        engine = db.engine()
        await upgrade(engine)
        await engine.dispose()
        yield db
        return
    async with pg_schema(PG_URL) as db:
        yield db


@asynccontextmanager
async def pg_schema(url: str) -> AsyncIterator[Database]:
    """A migrated PostgreSQL schema of its own on the server at ``url``, dropped afterwards."""
    db = Database(url, "t_" + uuid.uuid4().hex[:12])
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {db.schema}"))
    engine = db.engine()
    await upgrade(engine)
    await engine.dispose()
    try:
        yield db
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {db.schema} CASCADE"))
        await admin.dispose()


@dataclass
class Server:
    base: str
    client: httpx.AsyncClient
    app_id: str
    key: str
    models: ModelRegistry
    fake: FakeChatModel
    settings: Settings
    state: Any
    database: Database

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def new_app(self, name: str, spec: str = "fake:echo", **config: Any) -> str:
        """Another app in the same database; returns its key. ``config`` updates AppConfig."""
        engine = self.database.engine()
        try:
            async with make_sessionmaker(engine).begin() as session:
                row = await apps_service.create_app(session, name, model=spec)
                if config:
                    merged = {**row.config, **config}
                    merged["model"] = {**row.config["model"], **config.get("model", {})}
                    row.config = merged
                _, key = await apps_service.create_key(session, row)
                return key
        finally:
            await engine.dispose()

    def slow_saves(self, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
        """Every answer's save takes ``seconds`` longer (it is written after the answer went
        out)."""
        close_turn = self.state.hot.close_turn

        async def slow_close(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(seconds)
            return await close_turn(*args, **kwargs)

        monkeypatch.setattr(self.state.hot, "close_turn", slow_close)

    async def chat(self, query: str, user: str = "alice", **body: object) -> httpx.Response:
        payload = {"query": query, "user": user, "response_mode": "blocking", **body}
        return await self.client.post("/v1/chat-messages", json=payload, headers=self.auth())


cli_runner = CliRunner()


@pytest.fixture
def cli_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The operator CLI, run in-process, on a SQLite data directory of the test's own."""
    monkeypatch.setenv("PARLOUR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PARLOUR_DATABASE_URL", "")
    return tmp_path


def cli_json(*args: str) -> Any:
    """A CLI command that must succeed, and its ``--json`` output."""
    result = cli_runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fake_model() -> FakeChatModel:
    return FakeChatModel(name="fake:echo")


@asynccontextmanager
async def run_server(
    database: Database,
    tmp_path: Path,
    fake_model: FakeChatModel,
    app_id: str | None = None,
    key: str | None = None,
    **overrides: Any,
) -> AsyncIterator[Server]:
    """One parlour worker on a real socket. Without ``app_id`` it creates the app ``test``
    (model: the scripted ``fake:echo``) and a key; with one, it serves the same database."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=database.url,
        database_schema=database.schema,
        ping_interval=0.3,
        create_demo_app=False,
        gc_freeze=False,  # one process runs many servers: nothing of one may outlive it
        gc_young=0,  # nor change how the tests' process collects
        **overrides,
    )
    models = ModelRegistry()
    models.register("fake:echo", fake_model)
    if app_id is None:
        engine = database.engine()
        async with make_sessionmaker(engine).begin() as session:
            app_row = await apps_service.create_app(
                session, "test", model="fake:echo", prompt="Be brief."
            )
            _, key = await apps_service.create_key(session, app_row)
            app_id = app_row.id
        await engine.dispose()
    assert key is not None
    app = create_app(settings, models=models)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=20) as client:
            yield Server(
                base, client, app_id, key, models, fake_model, settings, app.state, database
            )
        await app.state.background.drain()
    finally:
        uv.should_exit = True
        await task


@pytest.fixture
async def server(
    database: Database, tmp_path: Path, fake_model: FakeChatModel
) -> AsyncIterator[Server]:
    """parlour on a real socket, an app whose model is the scripted ``fake:echo``."""
    async with run_server(database, tmp_path, fake_model) as running:
        yield running
