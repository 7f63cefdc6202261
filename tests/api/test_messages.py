"""GET /v1/messages (history pages) and GET /v1/messages/{id}/suggested."""

from __future__ import annotations

from datetime import datetime

from parlour.errors import CompletionRequestError
from tests.api.helpers import auth, insert_conversation, insert_messages, second_app, set_config
from tests.conftest import Server

AT = datetime(2026, 1, 2, 3, 4, 5, 123456)
UNKNOWN = "6b3b1c43-49b5-4a0a-8f6b-8d8f0f0b8f00"


async def history(server: Server, key: str | None = None, **params: object):  # type: ignore[no-untyped-def]
    return await server.client.get("/v1/messages", params=params, headers=server.auth(key))


async def test_history_is_chronological_with_every_field(server: Server) -> None:
    first = (await server.chat("one", auto_generate_name=False)).json()
    cid = first["conversation_id"]
    await server.chat("two", conversation_id=cid)
    r = await history(server, conversation_id=cid, user="alice")
    assert r.status_code == 200
    body = r.json()
    assert body["limit"] == 20 and body["has_more"] is False
    assert [m["query"] for m in body["data"]] == ["one", "two"]
    item = body["data"][0]
    assert set(item) >= {
        "id", "conversation_id", "parent_message_id", "inputs", "query", "answer",
        "message_files", "feedback", "retriever_resources", "agent_thoughts", "status",
        "error", "created_at",
    }
    assert item["id"] == first["message_id"] and item["answer"] == "echo: one"
    assert item["parent_message_id"] == "00000000-0000-0000-0000-000000000000"
    assert item["feedback"] is None and item["status"] == "normal" and item["error"] is None
    assert item["message_files"] == [] and item["agent_thoughts"] == []
    assert isinstance(item["created_at"], int)


async def test_paging_backwards_across_identical_timestamps(server: Server) -> None:
    cid = await insert_conversation(server, "alice", AT)
    ids = await insert_messages(server, cid, "alice", AT, 7)
    seen: list[str] = []
    first_id = None
    for _ in range(10):
        params = {"conversation_id": cid, "user": "alice", "limit": 3}
        if first_id:
            params["first_id"] = first_id
        body = (await history(server, **params)).json()
        page = [m["id"] for m in body["data"]]
        seen = page + seen
        if not body["has_more"]:
            break
        first_id = page[0]
    assert len(seen) == 7 and set(seen) == set(ids)
    assert seen == sorted(ids)  # (created_at, id) order, oldest first


async def test_in_flight_and_failed_messages(server: Server) -> None:
    cid = await insert_conversation(server, "alice", AT)
    await insert_messages(server, cid, "alice", AT, 1, status="running")
    item = (await history(server, conversation_id=cid, user="alice")).json()["data"][0]
    assert (item["status"], item["answer"]) == ("normal", "")
    cid = await insert_conversation(server, "alice", AT)
    await insert_messages(server, cid, "alice", AT, 1, status="stopped")
    item = (await history(server, conversation_id=cid, user="alice")).json()["data"][0]
    assert (item["status"], item["answer"]) == ("normal", "a0")
    server.fake.fail_with = CompletionRequestError("Rate Limit Error")
    failed = await server.chat("boom", user="alice")
    assert failed.status_code == 400
    convs = await server.client.get("/v1/conversations", params={"user": "alice"},
                                    headers=server.auth())
    newest = convs.json()["data"][0]["id"]
    item = (await history(server, conversation_id=newest, user="alice")).json()["data"][0]
    assert (item["status"], item["error"]) == ("error", "Rate Limit Error")


async def test_bad_queries(server: Server) -> None:
    cid = (await server.chat("hi")).json()["conversation_id"]
    empty = await history(server, conversation_id="", user="alice", limit=5)
    assert empty.json() == {"limit": 5, "has_more": False, "data": []}
    cases = [
        ({"user": "alice"}, 400, "invalid_param"),
        ({"conversation_id": "nope", "user": "alice"}, 400, "invalid_param"),
        ({"conversation_id": cid, "limit": 0}, 400, "invalid_param"),
        ({"conversation_id": cid, "limit": 101}, 400, "invalid_param"),
        ({"conversation_id": cid, "limit": "abc"}, 400, "invalid_param"),
        ({"conversation_id": cid, "first_id": "x"}, 400, "invalid_param"),
    ]
    for params, status, code in cases:
        r = await history(server, **params)
        assert (r.status_code, r.json()["code"], r.json()["status"]) == (status, code, status)
    r = await history(server, conversation_id=cid, user="alice", first_id=UNKNOWN)
    assert r.status_code == 404 and r.json()["message"] == "First Message Not Exists."


async def test_isolation_between_users_and_apps(server: Server) -> None:
    cid = (await server.chat("secret", user="alice")).json()["conversation_id"]
    r = await history(server, conversation_id=cid, user="bob")
    assert r.status_code == 404
    assert r.json() == {"code": "not_found", "message": "Conversation Not Exists.", "status": 404}
    r = await history(server, conversation_id=cid)  # no user: DEFAULT-USER
    assert r.status_code == 404
    _, other_key = await second_app(server)
    r = await server.client.get("/v1/messages", params={"conversation_id": cid, "user": "alice"},
                                headers=auth(other_key))
    assert r.status_code == 404


async def test_suggested_questions(server: Server) -> None:
    body = (await server.chat("hi", auto_generate_name=False)).json()
    mid = body["message_id"]
    url = f"/v1/messages/{mid}/suggested"
    r = await server.client.get(url, params={"user": "alice"}, headers=server.auth())
    assert r.status_code == 400
    assert r.json() == {
        "code": "bad_request", "message": "Suggested Questions Is Disabled.", "status": 400,
    }
    await set_config(server, suggested_questions_after_answer={"enabled": True})
    server.fake.script = lambda msgs: 'Sure: ["What next?", "Why?", 3, "How?", "More?"]'
    r = await server.client.get(url, params={"user": "alice"}, headers=server.auth())
    assert r.json() == {"result": "success", "data": ["What next?", "Why?", "How?"]}
    assert "User: hi" in server.fake.calls[-1][1].content
    server.fake.fail_with = CompletionRequestError("down")
    r = await server.client.get(url, params={"user": "alice"}, headers=server.auth())
    assert r.json() == {"result": "success", "data": []}
    r = await server.client.get(url, headers=server.auth())
    assert r.status_code == 400 and r.json()["message"] == "Arg user must be provided."
    r = await server.client.get(url, params={"user": "bob"}, headers=server.auth())
    assert r.status_code == 404 and r.json()["message"] == "Message Not Exists."
    r = await server.client.get("/v1/messages/not-a-uuid/suggested", params={"user": "alice"},
                                headers=server.auth())
    assert r.status_code == 404 and r.json()["message"] == "Message Not Exists."
