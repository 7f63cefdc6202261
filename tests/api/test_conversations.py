"""GET /v1/conversations, DELETE /v1/conversations/{id}, POST /v1/conversations/{id}/name."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.api.helpers import (
    auth,
    insert_conversation,
    insert_messages,
    second_app,
)
from tests.conftest import Server

AT = datetime(2026, 1, 2, 3, 4, 5, 123456)
UNKNOWN = "6b3b1c43-49b5-4a0a-8f6b-8d8f0f0b8f00"


async def listing(server: Server, key: str | None = None, **params: object):  # type: ignore[no-untyped-def]
    return await server.client.get("/v1/conversations", params=params, headers=server.auth(key))


async def test_newest_first_by_default_with_every_field(server: Server) -> None:
    a = (await server.chat("first", auto_generate_name=False)).json()["conversation_id"]
    b = (await server.chat("second", auto_generate_name=False)).json()["conversation_id"]
    body = (await listing(server, user="alice")).json()
    assert body["limit"] == 20 and body["has_more"] is False
    assert [c["id"] for c in body["data"]] == [b, a]
    item = body["data"][0]
    assert set(item) == {
        "id", "name", "inputs", "status", "introduction", "created_at", "updated_at",
    }
    assert item["name"] == "second" and item["status"] == "normal"
    assert isinstance(item["created_at"], int) and isinstance(item["updated_at"], int)
    await server.chat("again", conversation_id=a)  # a message moves updated_at
    body = (await listing(server, user="alice")).json()
    assert [c["id"] for c in body["data"]] == [a, b]
    body = (await listing(server, user="alice", sort_by="created_at")).json()
    assert [c["id"] for c in body["data"]] == [a, b]


async def test_paging_across_identical_timestamps_for_every_sort(server: Server) -> None:
    ids = [await insert_conversation(server, "alice", AT) for _ in range(5)]
    ids += [await insert_conversation(server, "alice", AT + timedelta(seconds=1))
            for _ in range(2)]
    for sort_by in ("created_at", "-created_at", "updated_at", "-updated_at"):
        seen: list[str] = []
        last_id = None
        for _ in range(10):
            params = {"user": "alice", "limit": 2, "sort_by": sort_by}
            if last_id:
                params["last_id"] = last_id
            body = (await listing(server, **params)).json()
            seen += [c["id"] for c in body["data"]]
            if not body["has_more"]:
                break
            last_id = seen[-1]
        assert len(seen) == 7 and set(seen) == set(ids), sort_by
        newest_first = sort_by.startswith("-")
        assert set(seen[:2] if newest_first else seen[5:]) == set(ids[5:]), sort_by


async def test_bad_list_queries(server: Server) -> None:
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"sort_by": "name"},
                   {"last_id": "nope"}):
        r = await listing(server, user="alice", **params)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_param"), params
    r = await listing(server, user="alice", last_id=UNKNOWN)
    assert r.status_code == 404
    assert r.json() == {
        "code": "not_found", "message": "Last Conversation Not Exists.", "status": 404,
    }


async def test_isolation_between_users_and_apps(server: Server) -> None:
    mine = (await server.chat("hi", user="alice")).json()["conversation_id"]
    await server.chat("hi", user="bob")
    assert [c["id"] for c in (await listing(server, user="alice")).json()["data"]] == [mine]
    assert (await listing(server)).json()["data"] == []  # DEFAULT-USER has none
    _, other_key = await second_app(server)
    assert (await listing(server, key=other_key, user="alice")).json()["data"] == []
    r = await listing(server, user="bob", last_id=mine)
    assert r.status_code == 404
    r = await server.client.post(
        f"/v1/conversations/{mine}/name", json={"name": "x", "user": "alice"},
        headers=auth(other_key),
    )
    assert r.status_code == 404 and r.json()["message"] == "Conversation Not Exists."


async def test_delete_removes_messages_and_feedback(server: Server) -> None:
    body = (await server.chat("bye")).json()
    cid, mid = body["conversation_id"], body["message_id"]
    await server.client.post(f"/v1/messages/{mid}/feedbacks",
                             json={"rating": "like", "user": "alice"}, headers=server.auth())
    url = f"/v1/conversations/{cid}"
    r = await server.client.request("DELETE", url, json={"user": "bob"}, headers=server.auth())
    assert r.status_code == 404
    r = await server.client.request("DELETE", url, headers=server.auth())
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    r = await server.client.request("DELETE", url, json={"user": "alice"}, headers=server.auth())
    assert r.status_code == 204 and r.content == b""
    r = await server.client.get("/v1/messages", params={"conversation_id": cid, "user": "alice"},
                                headers=server.auth())
    assert r.status_code == 404
    assert (await server.client.get("/v1/app/feedbacks", headers=server.auth())).json() == {
        "data": []
    }
    r = await server.client.request("DELETE", url, json={"user": "alice"}, headers=server.auth())
    assert r.status_code == 404
    r = await server.client.request("DELETE", "/v1/conversations/not-a-uuid",
                                    json={"user": "alice"}, headers=server.auth())
    assert r.status_code == 404 and r.json()["message"] == "Conversation Not Exists."


async def test_rename_by_hand_and_by_model(server: Server) -> None:
    cid = (await server.chat("what is the weather", auto_generate_name=False)).json()[
        "conversation_id"
    ]
    url = f"/v1/conversations/{cid}/name"
    r = await server.client.post(url, json={"name": " My chat ", "user": "alice"},
                                 headers=server.auth())
    assert r.status_code == 200
    assert r.json()["name"] == " My chat " and r.json()["id"] == cid
    server.fake.script = lambda msgs: "Weather Talk"
    r = await server.client.post(url, json={"auto_generate": True, "user": "alice"},
                                 headers=server.auth())
    assert r.status_code == 200 and r.json()["name"] == "Weather Talk"
    assert "what is the weather" in server.fake.calls[-1][-1].content
    for body in ({"user": "alice"}, {"name": "  ", "user": "alice"},
                 {"name": "x" * 256, "user": "alice"}, {"name": 5, "user": "alice"},
                 {"name": "x", "auto_generate": "maybe", "user": "alice"}):
        r = await server.client.post(url, json=body, headers=server.auth())
        assert (r.status_code, r.json()["code"]) == (400, "invalid_param"), body
    r = await server.client.post(url, json={"name": "x", "user": "bob"}, headers=server.auth())
    assert r.status_code == 404


async def test_auto_name_without_messages_or_with_a_failing_model(server: Server) -> None:
    empty = await insert_conversation(server, "alice", AT, name="kept")
    r = await server.client.post(f"/v1/conversations/{empty}/name",
                                 json={"auto_generate": True, "user": "alice"},
                                 headers=server.auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_param")
    await insert_messages(server, empty, "alice", AT, 1)
    from parlour.errors import CompletionRequestError

    server.fake.fail_with = CompletionRequestError("down")
    r = await server.client.post(f"/v1/conversations/{empty}/name",
                                 json={"auto_generate": True, "user": "alice"},
                                 headers=server.auth())
    assert r.status_code == 200 and r.json()["name"] == "kept"
