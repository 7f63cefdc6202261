"""A client that asks again as soon as it has an answer finds that answer in the history,
even while it is still being saved (the answer goes out before the save)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from parlour.providers.fake import FakeChatModel
from tests.conftest import Database, Server, run_server

BODY = {"query": "hi there", "user": "u", "response_mode": "blocking", "auto_generate_name": False}


async def streamed_to_the_end(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    """The message_end frame, as soon as it arrives (the answer's save may still be coming)."""
    async with server.client.stream(
        "POST", "/v1/chat-messages", json=body, headers=server.auth()
    ) as response:
        async for line in response.aiter_lines():
            if '"message_end"' in line:
                end: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return end
    raise AssertionError("no message_end")


async def test_a_quick_follow_up_has_the_previous_answer_in_its_prompt(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.slow_saves(monkeypatch, 0.3)  # the first answer is out, its save still on its way
    headers = server.auth()
    first = await streamed_to_the_end(server, {**BODY, "response_mode": "streaming"})
    again = await server.client.post(
        "/v1/chat-messages",
        json={**BODY, "query": "and then?", "conversation_id": first["conversation_id"]},
        headers=headers,
    )
    assert again.status_code == 200
    prompt = [(m.role, m.content) for m in server.fake.calls[-1]]
    assert ("user", "hi there") in prompt
    assert ("assistant", "echo: hi there") in prompt
    assert prompt[-1] == ("user", "and then?")


async def test_a_quick_follow_up_on_another_worker_waits_for_the_save(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker that answered saves after the answer went out; a follow-up sent at once to
    another worker (which cannot see that save coming) finds the message running, and waits
    for it."""
    model_a, model_b = FakeChatModel(), FakeChatModel()
    async with run_server(database, tmp_path, model_a) as a:
        async with run_server(database, tmp_path, model_b, app_id=a.app_id, key=a.key) as b:
            a.slow_saves(monkeypatch, 0.4)
            first = await streamed_to_the_end(a, {**BODY, "response_mode": "streaming"})
            again = await b.client.post(
                "/v1/chat-messages",
                json={**BODY, "query": "and then?", "conversation_id": first["conversation_id"]},
                headers=b.auth(),
            )
    assert again.status_code == 200, again.text
    prompt = [(m.role, m.content) for m in model_b.calls[-1]]
    assert ("assistant", "echo: hi there") in prompt and prompt[-1] == ("user", "and then?")


async def test_a_last_message_running_for_long_is_waited_for_a_second_at_most(
    database: Database, tmp_path: Path
) -> None:
    """A last message that is still being answered (not saved) does not hold the next one up
    for longer than a second, and its half answer is not in the history."""
    model = FakeChatModel(delay=0.05)
    async with run_server(database, tmp_path, model) as server:
        first = await server.chat("hi there", user="u")
        cid = first.json()["conversation_id"]
        long = " ".join(f"w{i}" for i in range(100))  # 5 s of answer
        running = asyncio.create_task(
            server.chat(long, user="u", conversation_id=cid, response_mode="streaming")
        )
        await asyncio.sleep(0.5)
        started = time.monotonic()
        again = await server.chat("and then?", user="u", conversation_id=cid)
        waited = time.monotonic() - started
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert again.status_code == 200, again.text
    assert 1.0 <= waited < 4.0, waited
    prompt = [(m.role, m.content) for m in model.calls[-1]]
    assert ("assistant", "echo: hi there") in prompt
    assert all(long not in content for _, content in prompt[:-1])
