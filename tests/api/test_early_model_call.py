"""A new conversation's model call starts at once, while its rows are written; a write that
fails cancels it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update

from parlour.storage.db import make_sessionmaker
from parlour.storage.models import ApiKey, Message, utcnow
from tests.conftest import Server

BODY = {"query": "hi there", "user": "u", "response_mode": "blocking", "auto_generate_name": False}


async def post(server: Server, body: dict[str, Any]) -> Any:
    return await server.client.post("/v1/chat-messages", json=body, headers=server.auth())


async def messages(server: Server) -> list[Message]:
    engine = server.database.engine()
    async with make_sessionmaker(engine)() as session:
        rows = list((await session.scalars(select(Message))).all())
    await engine.dispose()
    return rows


async def test_new_conversation_calls_the_model_while_its_rows_are_written(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_turn = server.state.hot.open_turn
    calls_during: list[int] = []

    async def slow_open(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.2)  # the model is asked meanwhile, if it is asked early
        calls_during.append(len(server.fake.calls))  # the calls made before the rows are
        return await open_turn(*args, **kwargs)

    monkeypatch.setattr(server.state.hot, "open_turn", slow_open)
    first = (await post(server, BODY)).json()
    assert first["answer"] == "echo: hi there"
    # a continued conversation's prompt needs its history: the model waits for the rows
    again = await post(server, {**BODY, "conversation_id": first["conversation_id"]})
    assert again.json()["answer"] == "echo: hi there"
    assert calls_during == [1, 1]
    assert [m.status for m in await messages(server)] == ["normal", "normal"]


async def test_a_failed_write_cancels_the_early_model_call(server: Server) -> None:
    """The key was revoked after the worker remembered it: the turn's proof fails, so the
    model call that started with it is cancelled, and the client gets 401 with no row."""
    server.fake.delay = 0.2  # still answering when the write fails
    assert (await post(server, BODY)).status_code == 200
    engine = server.database.engine()
    async with make_sessionmaker(engine).begin() as session:
        await session.execute(update(ApiKey).values(revoked_at=utcnow()))
    await engine.dispose()
    r = await post(server, BODY)
    assert r.status_code == 401 and r.json()["message"] == "Access token is invalid"
    assert (len(server.fake.calls), server.fake.finished, server.fake.cancelled) == (2, 1, 1)
    assert len(await messages(server)) == 1


async def test_a_client_gone_before_the_first_token_cancels_the_early_call(
    server: Server,
) -> None:
    """The stream begins with its first token: a client that leaves before it has no
    response yet. The model call is cancelled once that token came; the row ends stopped."""
    server.fake.delay = 0.5  # before each delta: the client has gone before the first
    request = asyncio.ensure_future(
        server.client.post(
            "/v1/chat-messages", headers=server.auth(), json={**BODY, "response_mode": "streaming"}
        )
    )
    await asyncio.sleep(0.2)
    request.cancel()
    for _ in range(50):
        rows = await messages(server)
        if rows and rows[0].status != "running" and server.fake.cancelled:
            break
        await asyncio.sleep(0.1)
    assert [m.status for m in rows] == ["stopped"]
    assert rows[0].answer in ("", "echo:")  # at most the delta that was on its way
    assert (server.fake.cancelled, server.fake.finished) == (1, 0)



async def test_the_response_waits_for_the_first_token_only_of_a_model_known_to_be_quick(
    server: Server,
) -> None:
    """Unknown (or slow) models: the stream begins once the rows are written, so pings and
    the watch for a client that leaves start at once. A model whose first tokens came
    quickly: the response begins with its first token."""

    async def headers_after() -> float:
        began = asyncio.get_running_loop().time()
        async with server.client.stream(
            "POST", "/v1/chat-messages", headers=server.auth(),
            json={**BODY, "response_mode": "streaming"},
        ) as response:
            took = asyncio.get_running_loop().time() - began
            await response.aread()
        return took

    server.fake.delay = 0.5
    assert await headers_after() < 0.4  # not known yet: the stream began before the token
    server.fake.delay = 0.0
    for _ in range(8):  # quick answers: the model is known to be quick
        await headers_after()
    server.fake.delay = 0.5
    assert await headers_after() >= 0.45  # began with its (slow, this time) first token
