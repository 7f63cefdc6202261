"""Upstream faults each end in one terminal stream event and a saved message status, never a
hang: HTTP 500, a stream cut mid-answer, a malformed chunk (a silent model: test_timeouts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from parlour.storage.models import Message
from tests.conftest import Server
from tests.sse import stream_chat
from tests.upstream import upstream as serve

HEAD = b'data: {"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n'


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """An OpenAI-compatible upstream whose model name picks the fault."""

    async def chat(request: web.Request) -> web.StreamResponse:
        fault = (await request.json())["model"]
        if fault == "http500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in ("one", " two", " three"):
            await response.write(HEAD % word.encode())
            await asyncio.sleep(0.01)
        if fault == "malformed":
            await response.write(b"data: {not json\n\n")
        assert request.transport is not None
        request.transport.close()  # "cut": the connection drops without a finish
        return response

    async with serve(chat) as base:
        yield base


async def saved(server: Server, message_id: str) -> Any:
    engine = server.database.engine()
    try:
        async with engine.connect() as conn:
            for _ in range(50):
                row = (await conn.execute(select(Message).where(Message.id == message_id))).first()
                if row is not None and row.status != "running":
                    return row
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    raise AssertionError("message still running")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("http500", "Server Unavailable Error"),
        ("cut", "cut off"),
        ("malformed", "Malformed chunk"),
    ],
)
async def test_fault_ends_stream_with_error(
    server: Server, upstream: str, fault: str, message: str
) -> None:
    key = await server.new_app(fault, f"openai:{fault}", model={"base_url": upstream})
    r, frames = await asyncio.wait_for(
        stream_chat(server.client, server.auth(key), query="hi", user="u",
                    auto_generate_name=False),
        10,
    )
    assert r.status_code == 200
    assert frames[-1]["event"] == "error", frames
    assert frames[-1]["status"] == 400 and frames[-1]["code"] == "completion_request_error"
    assert message in frames[-1]["message"]
    row = await saved(server, frames[-1]["message_id"])
    assert row.status == "error" and message in row.error
