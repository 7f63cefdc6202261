"""At shutdown the server cancels the requests still open past its grace period, then
closes the database: the answers those requests are still saving are waited for first."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.test_early_model_call import messages
from tests.conftest import Server

BODY = {"query": "hi there", "user": "u", "response_mode": "streaming", "auto_generate_name": False}


async def test_drain_waits_for_answers_still_being_saved(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.slow_saves(monkeypatch, 0.5)
    server.fake.delay = 0.05
    chat = server.state.chat
    request = asyncio.ensure_future(
        server.client.post("/v1/chat-messages", json=BODY, headers=server.auth())
    )
    for _ in range(200):
        if chat._unsaved:
            break
        await asyncio.sleep(0.01)
    assert len(chat._unsaved) == 1  # the run has started
    request.cancel()  # the client leaves: the run ends, and its save takes 0.5 s
    await asyncio.sleep(0.1)
    assert [m.status for m in await messages(server)] == ["running"]
    await chat.drain()
    assert [m.status for m in await messages(server)] == ["stopped"]
    assert not chat._unsaved


async def test_drain_returns_at_once_when_nothing_is_being_saved(server: Server) -> None:
    r = await server.client.post(
        "/v1/chat-messages", json={**BODY, "response_mode": "blocking"}, headers=server.auth()
    )
    assert r.status_code == 200
    chat = server.state.chat
    for _ in range(100):  # the blocking body went out before its save
        if not chat._unsaved:
            break
        await asyncio.sleep(0.01)
    assert not chat._unsaved
    await asyncio.wait_for(chat.drain(), 0.1)
