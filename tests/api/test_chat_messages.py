"""POST /v1/chat-messages: blocking and streaming bodies, history, persistence, failures."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from parlour.errors import CompletionRequestError
from parlour.storage.models import Conversation, Message
from tests.conftest import Server
from tests.sse import stream_chat

UUID_LEN = 36


async def messages_of(server: Server, conversation_id: str) -> list[Message]:
    """The conversation's rows once saved (a stream's outcome is saved just after its end)."""
    engine = server.database.engine()
    try:
        for _ in range(100):
            async with engine.connect() as conn:
                rows = list(
                    (
                        await conn.execute(
                            select(Message).where(Message.conversation_id == conversation_id)
                            .order_by(Message.created_at)
                        )
                    ).all()
                )
            if all(r.status != "running" for r in rows):
                break
            await asyncio.sleep(0.02)
        return rows  # type: ignore[return-value]
    finally:
        await engine.dispose()


async def test_blocking_body_has_every_field(server: Server) -> None:
    r = await server.chat("hello there")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {
        "event", "task_id", "id", "message_id", "conversation_id", "mode", "answer",
        "metadata", "created_at",
    }
    assert body["event"] == "message" and body["mode"] == "chat"
    assert body["answer"] == "echo: hello there"
    assert body["id"] == body["message_id"] and len(body["conversation_id"]) == UUID_LEN
    usage = body["metadata"]["usage"]
    assert isinstance(usage["prompt_tokens"], int) and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    for key in ("prompt_price", "completion_price", "total_price", "prompt_unit_price"):
        assert isinstance(usage[key], str) and "E" not in usage[key]
    assert usage["currency"] == "USD" and isinstance(usage["latency"], float)
    assert body["metadata"]["retriever_resources"] == []
    assert isinstance(body["created_at"], int)


async def test_streaming_frames(server: Server) -> None:
    r, frames = await stream_chat(
        server.client, server.auth(), query="one two three", user="alice"
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    messages = [f for f in frames if f["event"] == "message"]
    assert "".join(f["answer"] for f in messages) == "echo: one two three"
    first = messages[0]
    for key in ("task_id", "id", "message_id", "conversation_id", "created_at", "answer"):
        assert key in first
    assert first["id"] == first["message_id"]
    end = frames[-1]
    assert end["event"] == "message_end"
    assert end["metadata"]["usage"]["total_tokens"] > 0
    assert end["metadata"]["retriever_resources"] == []
    assert {f["task_id"] for f in messages} == {end["task_id"]}


async def test_default_mode_is_streaming_and_inputs_optional(server: Server) -> None:
    r = await server.client.post(
        "/v1/chat-messages", json={"query": "hi", "user": "u"}, headers=server.auth()
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")


async def test_conversation_continues_with_history(server: Server) -> None:
    first = (await server.chat("my name is Ada")).json()
    second = await server.chat("what is my name?", conversation_id=first["conversation_id"])
    assert second.status_code == 200
    assert second.json()["conversation_id"] == first["conversation_id"]
    sent = server.fake.calls[-1]
    assert [m.role for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0].content == "Be brief."
    assert sent[1].content == "my name is Ada" and sent[2].content == "echo: my name is Ada"
    rows = await messages_of(server, first["conversation_id"])
    assert [m.status for m in rows] == ["normal", "normal"]
    assert rows[1].answer == "echo: what is my name?"
    assert rows[1].prompt_tokens > 0 and rows[1].latency > 0


async def test_empty_ids_and_null_files_mean_new_conversation(server: Server) -> None:
    a = (await server.chat("a", conversation_id="", files=None, inputs={})).json()
    b = (await server.chat("b", files=[], auto_generate_name=True)).json()
    assert a["conversation_id"] != b["conversation_id"]


async def test_foreign_or_unknown_conversation_is_404(server: Server) -> None:
    mine = (await server.chat("hi", user="alice")).json()["conversation_id"]
    r = await server.chat("hi", user="bob", conversation_id=mine)
    assert r.status_code == 404
    assert r.json() == {"code": "not_found", "message": "Conversation Not Exists.", "status": 404}
    r = await server.chat("hi", conversation_id="6b3b1c43-49b5-4a0a-8f6b-8d8f0f0b8f00")
    assert r.status_code == 404
    r = await server.chat("hi", conversation_id="not-a-uuid")
    assert r.status_code == 400 and "valid UUID" in r.json()["message"]


async def test_validation_errors(server: Server) -> None:
    cases = [
        ({"user": "u"}, 400, "invalid_param"),
        ({"query": "x"}, 400, "invalid_param"),
        ({"query": 5, "user": "u"}, 400, "invalid_param"),
        ({"query": "", "user": "u"}, 400, "invalid_param"),
        ({"query": "x", "user": "u", "response_mode": "fast"}, 400, "invalid_param"),
        ({"query": "x", "user": "u", "inputs": []}, 400, "invalid_param"),
    ]
    for body, status, code in cases:
        r = await server.client.post("/v1/chat-messages", json=body, headers=server.auth())
        assert (r.status_code, r.json()["code"]) == (status, code), body
        assert r.json()["status"] == status
    r = await server.client.post("/v1/chat-messages", json={"user": "u"}, headers=server.auth())
    assert r.json()["message"] == "query: Field required"
    r = await server.client.post("/v1/chat-messages", json={"query": "x"}, headers=server.auth())
    assert r.json()["message"] == "Arg user must be provided."


async def test_model_failure_blocking_is_json_error_and_saved(server: Server) -> None:
    server.fake.fail_with = CompletionRequestError("Rate Limit Error")
    r = await server.chat("boom")
    assert r.status_code == 400
    assert r.json() == {
        "code": "completion_request_error", "message": "Rate Limit Error", "status": 400,
    }


async def test_failure_after_stream_started_ends_with_error_event(server: Server) -> None:
    server.fake.fail_with = CompletionRequestError("Connection Error")
    server.fake.fail_after = 2
    r, frames = await stream_chat(server.client, server.auth(), query="a b c d e", user="u")
    assert [f["event"] for f in frames] == ["message", "message", "error"]
    err = frames[-1]
    assert (err["status"], err["code"], err["message"]) == (
        400, "completion_request_error", "Connection Error",
    )
    rows = await messages_of(server, err["conversation_id"])
    assert rows[0].status == "error" and rows[0].error == "Connection Error"
    assert rows[0].answer == "echo: a"


async def test_ping_while_model_is_slow(server: Server) -> None:
    server.fake.delay = 0.45  # ping_interval is 0.3 s in tests
    r, frames = await stream_chat(server.client, server.auth(), query="slow reply", user="u")
    events = [f["event"] for f in frames]
    assert "ping" in events and events[-1] == "message_end"


async def test_new_conversation_named_from_query_then_by_model(server: Server) -> None:
    server.fake.script = lambda msgs: (
        "A Title" if msgs[0].content.startswith("Write a short title") else "answer"
    )
    async def name_after(query: str, **body: object) -> str | None:
        conversation_id = (await server.chat(query, **body)).json()["conversation_id"]
        await server.state.background.drain()
        engine = server.database.engine()
        async with engine.connect() as conn:
            name = await conn.scalar(
                select(Conversation.name).where(Conversation.id == conversation_id)
            )
        await engine.dispose()
        return name

    assert await name_after("a rather long first question here") == "A Title"
    assert await name_after("no title please", auto_generate_name=False) == "no title please"


async def test_stream_json_is_utf8_not_escaped(server: Server) -> None:
    async with server.client.stream(
        "POST", "/v1/chat-messages",
        json={"query": "héllo 世界", "user": "u", "response_mode": "streaming"},
        headers=server.auth(),
    ) as r:
        raw = (await r.aread()).decode()
    assert "世界" in raw
    assert all(line.startswith("data: {") for line in raw.split("\n\n") if line)
    json.loads(raw.split("\n\n")[0][6:])


async def test_concurrent_streams_all_complete(server: Server) -> None:
    server.fake.delay = 0.01
    results = await asyncio.gather(
        *(stream_chat(server.client, server.auth(), query=f"q{i} x y", user=f"u{i % 3}")
          for i in range(20))
    )
    for i, (r, frames) in enumerate(results):
        assert r.status_code == 200
        assert "".join(f["answer"] for f in frames if f["event"] == "message") == f"echo: q{i} x y"
