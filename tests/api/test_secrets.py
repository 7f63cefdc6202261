"""Secrets: API keys are stored only as hashes (what ``parlour keys create`` writes), and
neither keys nor message content reach the logs at INFO, not even when the upstream fails
with an error that echoes the request back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import traceback
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from sqlalchemy import text
from typer.testing import CliRunner

from parlour.cli import cli
from tests.conftest import Database, Server
from tests.sse import stream_chat
from tests.upstream import upstream as serve

UPSTREAM_KEY = "sk-upstream-4f1c9e7a2b6d"
QUERY = "zanzibar-quokka-question"
INPUT = "marmalade-input-value"


async def test_cli_keys_are_stored_only_as_hashes(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARLOUR_DATABASE_URL", database.url)
    monkeypatch.setenv("PARLOUR_DATABASE_SCHEMA", database.schema)
    runner = CliRunner()

    def run(*args: str) -> object:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    await asyncio.to_thread(run, "apps", "create", "vault", "--model", "fake:echo", "--json")
    created = await asyncio.to_thread(run, "keys", "create", "vault", "--json")
    key = created[0]["key"]  # type: ignore[index]
    engine = database.engine()
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM api_keys"))).mappings().all()
    finally:
        await engine.dispose()
    assert len(rows) == 1
    row = dict(rows[0])
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    stored = " ".join(str(v) for v in row.values())
    assert key not in stored and key[4:] not in stored and key[4:16] not in stored
    assert len(row["key_hint"]) < len(key) // 2 + 4  # a hint, not the key
    listed = await asyncio.to_thread(run, "keys", "list", row["app_id"], "--json")
    assert key not in json.dumps(listed)


@pytest.fixture
async def echoing_upstream() -> AsyncIterator[str]:
    """An upstream that fails, quoting the whole request (headers included) in its error."""

    async def chat(request: web.Request) -> web.StreamResponse:
        echo = {"headers": dict(request.headers), "body": await request.json()}
        return web.json_response({"error": {"message": json.dumps(echo)}}, status=401)

    async with serve(chat) as base:
        yield base


def logged_text(records: list[logging.LogRecord]) -> str:
    out = []
    for r in records:
        out.append(r.getMessage())
        if r.exc_info:
            out.append("".join(traceback.format_exception(*r.exc_info)))
        if r.exc_text:
            out.append(r.exc_text)
    return "\n".join(out)


async def test_keys_and_content_never_reach_the_logs(
    server: Server, echoing_upstream: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for name in ("uvicorn.access", "uvicorn.error", "parlour"):
        caplog.set_level(logging.INFO, logger=name)
    server.fake.script = lambda msgs: "the answer is pomegranate-answer-text"
    failing_key = await server.new_app(
        "failing", "openai:gpt-x", model={"base_url": echoing_upstream, "api_key": UPSTREAM_KEY}
    )
    # a blocking and a streaming round trip, suggested questions, a rename by the model
    ok = await server.chat(QUERY, inputs={"note": INPUT})
    assert ok.status_code == 200 and "pomegranate" in ok.text
    cid = ok.json()["conversation_id"]
    r, frames = await stream_chat(server.client, server.auth(), query=QUERY, user="alice",
                                  conversation_id=cid)
    assert frames[-1]["event"] == "message_end"
    # the upstream fails: blocking, streaming, title generation and suggested questions
    h = server.auth(failing_key)
    bad = await server.client.post("/v1/chat-messages", headers=h, json={
        "query": QUERY, "user": "alice", "response_mode": "blocking", "inputs": {"n": INPUT}})
    assert bad.status_code >= 400
    r, frames = await stream_chat(server.client, h, query=QUERY, user="alice")
    assert frames[-1]["event"] == "error"
    # nor does the client see what the upstream quoted back (the operator's upstream key)
    assert UPSTREAM_KEY not in bad.text and UPSTREAM_KEY not in json.dumps(frames)
    # a wrong key, too
    await server.client.get("/v1/info", headers=server.auth("app-" + "x" * 24))
    await asyncio.sleep(0.3)  # background title generation
    await server.state.background.drain()
    logged = logged_text(caplog.records)
    assert caplog.records, "nothing was logged: the capture is not working"
    for secret in (server.key, failing_key, UPSTREAM_KEY, QUERY, INPUT,
                   "pomegranate-answer-text", "x" * 24):
        assert secret not in logged, (secret, logged[:3000])
