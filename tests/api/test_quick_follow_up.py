"""A client that asks again as soon as it has an answer finds that answer in the history,
even while it is still being saved (the answer goes out before the save)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Server

BODY = {"query": "hi there", "user": "u", "response_mode": "blocking", "auto_generate_name": False}


async def test_a_quick_follow_up_has_the_previous_answer_in_its_prompt(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.slow_saves(monkeypatch, 0.3)  # the first answer is out, its save still on its way
    headers = server.auth()
    stream = {**BODY, "response_mode": "streaming"}
    async with server.client.stream(
        "POST", "/v1/chat-messages", json=stream, headers=headers
    ) as response:
        async for line in response.aiter_lines():
            if '"message_end"' in line:  # the whole answer is here: ask again at once
                first = json.loads(line.removeprefix("data: "))
                break
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
