"""Several workers on one PostgreSQL/SQLite database and one Redis: a stop reaches the worker
running the task, active-request limits count streams across workers, /health answers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from parlour.providers.fake import FakeChatModel
from parlour.storage.db import make_sessionmaker
from parlour.storage.models import App, utcnow
from tests.conftest import Database, Server, run_server

REDIS = "redis://127.0.0.1:6379/0"


async def set_app_limit(server: Server, limit: int) -> None:
    engine = server.database.engine()
    async with make_sessionmaker(engine).begin() as session:
        app = await session.get(App, server.app_id)
        assert app is not None
        app.max_active_requests = limit
    await engine.dispose()


async def first_frame(server: Server, body: dict[str, Any], frames: list[dict[str, Any]],
                      got_first: asyncio.Event) -> None:
    async with server.client.stream(
        "POST", "/v1/chat-messages", json=body, headers=server.auth()
    ) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
                got_first.set()


async def test_stop_sent_to_another_worker(database: Database, tmp_path: Path) -> None:
    model_a, model_b = FakeChatModel(delay=0.05), FakeChatModel(delay=0.05)
    async with run_server(database, tmp_path, model_a, redis_url=REDIS) as a:
        async with run_server(
            database, tmp_path, model_b, app_id=a.app_id, key=a.key, redis_url=REDIS
        ) as b:
            words = " ".join(f"w{i}" for i in range(100))  # 5 s of answer
            frames: list[dict[str, Any]] = []
            got_first = asyncio.Event()
            body = {"query": words, "user": "ann", "response_mode": "streaming",
                    "auto_generate_name": False}
            streaming = asyncio.create_task(first_frame(a, body, frames, got_first))
            await asyncio.wait_for(got_first.wait(), 5)
            sent = time.monotonic()
            r = await b.client.post(
                f"/v1/chat-messages/{frames[0]['task_id']}/stop",
                json={"user": "ann"}, headers=b.auth(),
            )
            assert r.json() == {"result": "success"}
            await asyncio.wait_for(streaming, 5)
            assert time.monotonic() - sent < 1.0
            assert frames[-1]["event"] == "message_end"
            assert model_a.cancelled == 1


async def test_active_limit_counts_streams_across_workers(
    database: Database, tmp_path: Path
) -> None:
    slow = FakeChatModel(delay=0.05)
    async with run_server(database, tmp_path, slow, redis_url=REDIS) as a:
        async with run_server(
            database, tmp_path, FakeChatModel(), app_id=a.app_id, key=a.key, redis_url=REDIS
        ) as b:
            await set_app_limit(a, 1)
            frames: list[dict[str, Any]] = []
            got_first = asyncio.Event()
            body = {"query": "a b c d e f g h i j", "user": "ann",
                    "response_mode": "streaming", "auto_generate_name": False}
            streaming = asyncio.create_task(first_frame(a, body, frames, got_first))
            await asyncio.wait_for(got_first.wait(), 5)
            r = await b.chat("second", user="bob")
            assert r.status_code == 429
            assert r.json() == {
                "code": "too_many_requests",
                "status": 429,
                "message": "Too many requests. Please try again later. The current maximum "
                f"concurrent requests allowed for {a.app_id} is 1.",
            }
            await streaming
            assert (await b.chat("third", user="bob")).status_code == 200


@pytest.mark.parametrize("redis_url", ["", REDIS])
async def test_active_limit_released_on_stop_error_and_disconnect(
    database: Database, tmp_path: Path, redis_url: str
) -> None:
    model = FakeChatModel(delay=0.05)
    async with run_server(database, tmp_path, model, redis_url=redis_url) as s:
        await set_app_limit(s, 1)
        # a client that leaves mid-stream
        async with s.client.stream(
            "POST", "/v1/chat-messages",
            json={"query": "a b c d e f g", "user": "u", "response_mode": "streaming"},
            headers=s.auth(),
        ) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    break
        for _ in range(50):
            model.delay = 0
            if (await s.chat("after disconnect")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the slot of a disconnected stream was not released")
        from parlour.errors import CompletionRequestError

        model.fail_with = CompletionRequestError("boom")
        assert (await s.chat("fails")).status_code == 400
        model.fail_with = None
        assert (await s.chat("fine again")).status_code == 200


async def test_per_user_rate_limit(database: Database, tmp_path: Path) -> None:
    async with run_server(database, tmp_path, FakeChatModel(), end_user_rpm=2) as s:
        assert (await s.chat("1", user="eve")).status_code == 200
        assert (await s.chat("2", user="eve")).status_code == 200
        r = await s.chat("3", user="eve")
        assert r.status_code == 429 and r.json()["code"] == "too_many_requests"
        assert (await s.chat("1", user="someone-else")).status_code == 200


async def test_restarted_request_is_counted_once(database: Database, tmp_path: Path) -> None:
    """An app edited between two messages makes the second start again from the key's row
    (see services/apps.KeyHints): one request still counts once against the limit."""
    async with run_server(database, tmp_path, FakeChatModel(), end_user_rpm=2) as s:
        assert (await s.chat("1", user="eve")).status_code == 200
        engine = database.engine()
        async with make_sessionmaker(engine).begin() as session:
            await session.execute(update(App).values(updated_at=utcnow()))
        await engine.dispose()
        assert (await s.chat("2", user="eve")).status_code == 200
        assert (await s.chat("3", user="eve")).status_code == 429


async def test_health(database: Database, tmp_path: Path) -> None:
    async with run_server(database, tmp_path, FakeChatModel(), redis_url=REDIS) as s:
        r = await s.client.get("/health")
        assert r.status_code == 200
        assert r.json()["database"] == "ok" and r.json()["redis"] == "ok"
    async with run_server(
        database, tmp_path, FakeChatModel(), redis_url="redis://127.0.0.1:1/0"
    ) as down:
        r = await down.client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unhealthy"
        # Redis down: limits fail open and chat still works
        assert (await down.chat("still answering?")).status_code == 200
