"""Auth exactly as Dify answers it, and every failure as ``{"code","message","status"}``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from parlour.providers.fake import FakeChatModel
from parlour.services.chat import ChatService
from parlour.storage.db import make_sessionmaker
from parlour.storage.migrate import upgrade
from parlour.storage.models import ApiKey, App, EndUser, Message, utcnow
from tests.conftest import Database, Server, run_server

BODY = {"query": "hi", "user": "u", "response_mode": "blocking"}


async def post(server: Server, headers: dict[str, str], body: Any = BODY) -> Any:
    return await server.client.post("/v1/chat-messages", json=body, headers=headers)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authorization header must be provided and start with 'Bearer'"),
        ("Bearer", "Authorization header must be provided and start with 'Bearer'"),
        ("Basic abc", "Authorization scheme must be 'Bearer'"),
        ("Bearer app-doesnotexist000000000000", "Access token is invalid"),
    ],
)
async def test_unauthorized(server: Server, header: str | None, message: str) -> None:
    r = await post(server, {"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.json() == {"code": "unauthorized", "message": message, "status": 401}
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_scheme_is_case_insensitive(server: Server) -> None:
    r = await post(server, {"Authorization": f"bearer {server.key}"})
    assert r.status_code == 200


async def _set(server: Server, table: Any, **values: Any) -> None:
    engine = server.database.engine()
    async with make_sessionmaker(engine).begin() as session:
        await session.execute(update(table).values(**values))
    await engine.dispose()


async def test_revoked_key_stops_at_once(server: Server) -> None:
    assert (await post(server, server.auth())).status_code == 200
    await _set(server, ApiKey, revoked_at=utcnow())
    r = await post(server, server.auth())
    assert r.status_code == 401 and r.json()["message"] == "Access token is invalid"


def key_reads(server: Server, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The key hashes the server reads from the database from now on."""
    reads: list[str] = []
    read = server.state.hot.key

    async def counted(key_hash: str) -> Any:
        reads.append(key_hash)
        return await read(key_hash)

    monkeypatch.setattr(server.state.hot, "key", counted)
    return reads


async def _count(server: Server, model: Any) -> int:
    engine = server.database.engine()
    async with make_sessionmaker(engine)() as session:
        n = await session.scalar(select(func.count()).select_from(model))
    await engine.dispose()
    return int(n or 0)


async def test_remembered_key_is_proved_by_the_turn(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker remembers a key it has read and skips reading it again for a message; the
    message's first write proves the row still holds, so nothing changes for a client."""
    reads = key_reads(server, monkeypatch)
    assert (await post(server, server.auth())).status_code == 200
    assert (await post(server, server.auth())).status_code == 200
    assert len(reads) == 1  # the second message started from the remembered row
    messages, users = await _count(server, Message), await _count(server, EndUser)
    await _set(server, ApiKey, revoked_at=utcnow())
    for body in (BODY, {**BODY, "user": "someone-new"}, {**BODY, "query": ""}, [1]):
        r = await post(server, server.auth(), body)
        assert r.status_code == 401 and r.json()["message"] == "Access token is invalid"
    streamed = await post(server, server.auth(), {**BODY, "response_mode": "streaming"})
    assert streamed.status_code == 401
    assert (await _count(server, Message), await _count(server, EndUser)) == (messages, users)
    assert len(reads) > 1


async def test_remembered_key_sees_app_changes(server: Server) -> None:
    assert (await post(server, server.auth())).status_code == 200
    await _set(server, App, enable_api=False)  # changed behind the server's back
    r = await post(server, server.auth())
    assert (r.status_code, r.json()["message"]) == (403, "The app's API service has been disabled.")
    await _set(server, App, enable_api=True)
    assert (await post(server, server.auth())).status_code == 200
    before = await _count(server, Message)
    await _set(server, App, updated_at=utcnow())  # an edited app: read again, one message
    r = await post(server, server.auth())
    assert r.status_code == 200 and r.json()["answer"]
    assert await _count(server, Message) == before + 1


async def test_key_proof_on_hand_written_sqlite_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``updated_at`` written by hand (SQLite's CURRENT_TIMESTAMP: no fraction) is proved
    as stored, so its key is not read again for every message."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'parlour.db'}")
    engine = database.engine()
    await upgrade(engine)
    await engine.dispose()
    async with run_server(database, tmp_path, FakeChatModel()) as server:
        engine = database.engine()
        async with engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE apps SET updated_at = CURRENT_TIMESTAMP")
        await engine.dispose()
        reads = key_reads(server, monkeypatch)
        for _ in range(3):
            assert (await post(server, server.auth())).status_code == 200
        assert len(reads) == 1


async def test_a_burst_of_first_requests_reads_the_config_once(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after a start, concurrent requests share one read of the app's config."""
    hot = server.state.hot
    server.state.app_cache._configs.clear()  # as right after a start
    server.state.keys.hints._rows.clear()
    config, reads = hot.config, []

    async def counted(app_id: str) -> Any:
        reads.append(app_id)
        await asyncio.sleep(0.05)
        return await config(app_id)

    monkeypatch.setattr(hot, "config", counted)
    answers = await asyncio.gather(*(post(server, server.auth()) for _ in range(12)))
    assert [r.status_code for r in answers] == [200] * 12
    assert reads == [server.app_id]


async def test_disabled_or_abnormal_app_is_forbidden(server: Server) -> None:
    await _set(server, App, enable_api=False)
    r = await post(server, server.auth())
    assert r.status_code == 403
    assert r.json()["message"] == "The app's API service has been disabled."
    await _set(server, App, enable_api=True, status="archived")
    r = await post(server, server.auth())
    assert (r.status_code, r.json()["message"]) == (403, "The app's status is abnormal.")


async def test_unknown_route_and_method(server: Server) -> None:
    r = await server.client.get("/v1/nowhere", headers=server.auth())
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert r.headers["content-type"].startswith("application/json")
    r = await server.client.get("/v1/chat-messages", headers=server.auth())
    assert r.status_code == 405
    assert r.json() == {
        "code": "method_not_allowed",
        "message": "The method is not allowed for the requested URL.",
        "status": 405,
    }


async def test_body_errors(server: Server) -> None:
    headers = {**server.auth(), "Content-Type": "application/json"}
    r = await server.client.post("/v1/chat-messages", content=b"{nope", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "bad_request"
    r = await server.client.post("/v1/chat-messages", content=b"[1, 2]", headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "invalid_param"
    text_headers = {**server.auth(), "Content-Type": "text/plain"}
    r = await server.client.post("/v1/chat-messages", content=b"query=hi", headers=text_headers)
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    big = b'{"query": "' + b"x" * (server.settings.max_body_bytes + 10) + b'", "user": "u"}'
    r = await server.client.post("/v1/chat-messages", content=big, headers=headers)
    assert r.status_code == 413 and r.json()["status"] == 413


async def test_get_with_json_content_type_and_no_body(server: Server) -> None:
    headers = {**server.auth(), "Content-Type": "application/json"}
    r = await server.client.get("/v1/", headers=headers)
    assert r.status_code == 200 and r.json()["api_version"] == "v1"


async def test_unexpected_failure_is_json_500(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(self: ChatService, *args: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(ChatService, "start", explode)
    r = await post(server, server.auth())
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "internal_server_error" and body["status"] == 500
    assert "fire" not in r.text and "Traceback" not in r.text


async def test_cors_preflight(server: Server) -> None:
    r = await server.client.options(
        "/v1/chat-messages",
        headers={
            "Origin": "https://example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "https://example.org")
