"""Stop and disconnect really stop: the upstream HTTP stream is closed, the partial answer is
saved as ``stopped``, and a stopped stream still ends with ``message_end``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sqlalchemy import select

from parlour.storage.models import Message
from tests.conftest import Server, free_port
from tests.mock_llm import established_to, health, mock_llm


async def message_row(server: Server, message_id: str) -> Any:
    engine = server.database.engine()
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(Message).where(Message.id == message_id))).first()
    finally:
        await engine.dispose()


async def wait_status(server: Server, message_id: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        row = await message_row(server, message_id)
        if row is not None and row.status != "running":
            return row
        assert time.monotonic() < deadline, "message still running"
        await asyncio.sleep(0.05)


async def test_stop_closes_upstream_and_ends_with_message_end(server: Server) -> None:
    port = free_port()
    with mock_llm(port, tokens=200, delay_ms=50) as base:  # a whole reply would take 10 s
        key = await server.new_app("mocked", "openai:mock-gpt", model={"base_url": base})
        body = {"query": "tell me everything", "user": "alice", "response_mode": "streaming",
                "auto_generate_name": False}
        frames: list[dict[str, Any]] = []
        started = time.monotonic()
        async with server.client.stream(
            "POST", "/v1/chat-messages", json=body, headers=server.auth(key)
        ) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                frames.append(json.loads(line[6:]))
                if sum(f["event"] == "message" for f in frames) == 3 and len(frames) == 3:
                    stop = await server.client.post(
                        f"/v1/chat-messages/{frames[0]['task_id']}/stop",
                        json={"user": "alice"}, headers=server.auth(key),
                    )
                    assert stop.json() == {"result": "success"}
        assert time.monotonic() - started < 5
        assert frames[-1]["event"] == "message_end"
        partial = "".join(f["answer"] for f in frames if f["event"] == "message")
        assert 3 <= len(partial.split()) < 200
        assert health(base)["chat_requests"] == 1
        await asyncio.sleep(0.3)
        assert established_to(port) == 0  # the provider's HTTP stream was closed
        row = await wait_status(server, frames[0]["message_id"])
        assert row.status == "stopped" and row.answer == partial
        assert row.completion_tokens > 0


async def test_only_the_owner_can_stop(server: Server) -> None:
    server.fake.delay = 0.05
    body = {"query": "a b c d e f g h", "user": "alice", "response_mode": "streaming"}
    frames: list[dict[str, Any]] = []
    async with server.client.stream(
        "POST", "/v1/chat-messages", json=body, headers=server.auth()
    ) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
                if len(frames) == 1:
                    stop = await server.client.post(
                        f"/v1/chat-messages/{frames[0]['task_id']}/stop",
                        json={"user": "mallory"}, headers=server.auth(),
                    )
                    assert stop.status_code == 200 and stop.json() == {"result": "success"}
    answer = "".join(f["answer"] for f in frames if f["event"] == "message")
    assert answer == "echo: a b c d e f g h"
    row = await wait_status(server, frames[0]["message_id"])
    assert row.status == "normal"


async def test_stop_of_unknown_task_is_success_and_needs_user(server: Server) -> None:
    r = await server.client.post(
        "/v1/chat-messages/whatever/stop", json={"user": "a"}, headers=server.auth()
    )
    assert r.status_code == 200 and r.json() == {"result": "success"}
    r = await server.client.post(
        "/v1/chat-messages/whatever/stop", json={}, headers=server.auth()
    )
    assert r.status_code == 400 and r.json()["message"] == "Arg user must be provided."


async def test_client_disconnect_cancels_upstream_and_saves_partial(server: Server) -> None:
    port = free_port()
    with mock_llm(port, tokens=200, delay_ms=50) as base:
        key = await server.new_app("mocked", "openai:mock-gpt", model={"base_url": base})
        body = {"query": "long story", "user": "bob", "response_mode": "streaming",
                "auto_generate_name": False}
        seen: list[dict[str, Any]] = []
        async with server.client.stream(
            "POST", "/v1/chat-messages", json=body, headers=server.auth(key)
        ) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if len(seen) == 3:
                        break  # leaving the block closes the connection
        row = await wait_status(server, seen[0]["message_id"])
        assert row.status == "stopped"
        assert row.answer.startswith("".join(f["answer"] for f in seen))
        await asyncio.sleep(0.3)
        assert established_to(port) == 0


async def test_blocking_stop_returns_partial_answer(server: Server) -> None:
    server.fake.delay = 0.1
    words = " ".join(f"w{i}" for i in range(40))
    request = asyncio.create_task(server.chat(words, user="carol", auto_generate_name=False))
    engine = server.database.engine()
    try:
        task_id = None
        while task_id is None:
            await asyncio.sleep(0.05)
            async with engine.connect() as conn:
                task_id = await conn.scalar(select(Message.task_id).where(Message.query == words))
    finally:
        await engine.dispose()
    await asyncio.sleep(0.35)
    await server.client.post(
        f"/v1/chat-messages/{task_id}/stop", json={"user": "carol"}, headers=server.auth()
    )
    r = await request
    assert r.status_code == 200
    answer = r.json()["answer"]
    assert answer.startswith("echo: w0") and len(answer) < len("echo: " + words)
    assert server.fake.cancelled >= 1
