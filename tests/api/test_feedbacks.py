"""POST /v1/messages/{id}/feedbacks and GET /v1/app/feedbacks."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import auth, second_app
from tests.conftest import Server


async def feedback(server: Server, mid: str, key: str | None = None, **body: Any) -> httpx.Response:
    return await server.client.post(f"/v1/messages/{mid}/feedbacks", json=body,
                                    headers=server.auth(key))


async def rating_in_history(server: Server, cid: str) -> Any:
    r = await server.client.get("/v1/messages", params={"conversation_id": cid, "user": "alice"},
                                headers=server.auth())
    return r.json()["data"][0]["feedback"]


async def test_like_update_keep_content_and_revoke(server: Server) -> None:
    body = (await server.chat("hi")).json()
    mid, cid = body["message_id"], body["conversation_id"]
    r = await feedback(server, mid, rating="like", user="alice", content="great")
    assert r.status_code == 200 and r.json() == {"result": "success"}
    assert await rating_in_history(server, cid) == {"rating": "like"}
    # an update without content (dify-client-python sends "content": null) keeps it
    await feedback(server, mid, rating="dislike", user="alice", content=None)
    items = (await server.client.get("/v1/app/feedbacks", headers=server.auth())).json()["data"]
    assert len(items) == 1
    item = items[0]
    assert (item["rating"], item["content"], item["from_source"]) == ("dislike", "great", "user")
    assert item["message_id"] == mid and item["conversation_id"] == cid
    assert item["from_account_id"] is None and "T" in item["created_at"]
    await feedback(server, mid, rating="like", user="alice", content="changed my mind")
    items = (await server.client.get("/v1/app/feedbacks", headers=server.auth())).json()["data"]
    assert (items[0]["rating"], items[0]["content"]) == ("like", "changed my mind")
    r = await feedback(server, mid, rating=None, user="alice")
    assert r.status_code == 200
    assert await rating_in_history(server, cid) is None
    r = await feedback(server, mid, rating=None, user="alice")
    assert r.status_code == 400
    assert r.json()["message"] == "rating cannot be None when feedback not exists"


async def test_feedback_errors_and_scoping(server: Server) -> None:
    mid = (await server.chat("hi")).json()["message_id"]
    r = await feedback(server, mid, rating="like")
    assert r.status_code == 400 and r.json()["message"] == "Arg user must be provided."
    r = await feedback(server, mid, rating="meh", user="alice")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_param")
    r = await feedback(server, mid, rating="like", user="alice", content=5)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_param")
    r = await feedback(server, mid, rating="like", user="bob")
    assert r.status_code == 404
    assert r.json() == {"code": "not_found", "message": "Message Not Exists.", "status": 404}
    r = await feedback(server, "not-a-uuid", rating="like", user="alice")
    assert r.status_code == 404
    _, other_key = await second_app(server)
    r = await feedback(server, mid, key=other_key, rating="like", user="alice")
    assert r.status_code == 404
    r = await server.client.post(f"/v1/messages/{mid}/feedbacks", content=b"rating=like",
                                 headers={**server.auth(), "Content-Type": "text/plain"})
    assert r.status_code == 415


async def test_app_feedbacks_pages_newest_first(server: Server) -> None:
    mids = []
    for i in range(5):
        mid = (await server.chat(f"q{i}", user=f"u{i % 2}")).json()["message_id"]
        await feedback(server, mid, rating="like", user=f"u{i % 2}", content=f"c{i}")
        mids.append(mid)
    page1 = await server.client.get("/v1/app/feedbacks", params={"limit": 3},
                                    headers=server.auth())
    page2 = await server.client.get("/v1/app/feedbacks", params={"limit": 3, "page": 2},
                                    headers=server.auth())
    got = [f["message_id"] for f in page1.json()["data"] + page2.json()["data"]]
    assert got == list(reversed(mids))
    assert set(page1.json()) == {"data"}
    for params in ({"page": 0}, {"limit": 0}, {"limit": 102}, {"page": "x"}):
        r = await server.client.get("/v1/app/feedbacks", params=params, headers=server.auth())
        assert (r.status_code, r.json()["code"]) == (400, "invalid_param"), params
    r = await server.client.get("/v1/app/feedbacks", params={"limit": 101}, headers=server.auth())
    assert r.status_code == 200
    _, other_key = await second_app(server)
    r = await server.client.get("/v1/app/feedbacks", headers=auth(other_key))
    assert r.json() == {"data": []}
