"""Bad input to the conversation API: always a Dify-shaped 4xx, never a 500."""

from __future__ import annotations

from typing import Any

from tests.conftest import Server

BIG = "9" * 30


async def test_bad_input_is_always_a_dify_shaped_4xx(server: Server) -> None:
    body = (await server.chat("hi")).json()
    cid, mid = body["conversation_id"], body["message_id"]
    h = server.auth()
    c = server.client
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/messages", {"params": {"conversation_id": cid, "limit": BIG}}),
        ("GET", "/v1/messages", {"params": {"conversation_id": cid, "limit": "-1"}}),
        ("GET", "/v1/messages", {"params": {"conversation_id": cid, "user": "u" * 300}}),
        ("GET", "/v1/conversations", {"params": {"limit": "1.5"}}),
        ("GET", "/v1/conversations", {"params": {"sort_by": "-name"}}),
        ("GET", "/v1/app/feedbacks", {"params": {"page": BIG}}),
        ("GET", "/v1/app/feedbacks", {"params": {"page": "-3"}}),
        ("POST", f"/v1/conversations/{cid}/name", {"json": ["name"]}),
        ("POST", f"/v1/conversations/{cid}/name", {"json": {"name": ["x"], "user": "alice"}}),
        ("POST", f"/v1/conversations/{cid}/name", {"content": b"{bad", "headers": {
            "Content-Type": "application/json"}}),
        ("POST", f"/v1/conversations/{cid}/name", {"content": b"name=x", "headers": {
            "Content-Type": "application/x-www-form-urlencoded"}}),
        ("POST", f"/v1/messages/{mid}/feedbacks", {"json": {"rating": 1, "user": "alice"}}),
        ("POST", f"/v1/messages/{mid}/feedbacks", {"json": {"rating": "like", "user": {}}}),
        ("POST", f"/v1/messages/{mid}/feedbacks", {"json": {"rating": "like"}}),
        ("PUT", f"/v1/conversations/{cid}/variables/{mid}", {"json": "value"}),
        ("DELETE", f"/v1/conversations/{cid}", {"content": b"[1]", "headers": {
            "Content-Type": "application/json"}}),
        ("DELETE", f"/v1/conversations/{cid}", {"content": b"{", "headers": {
            "Content-Type": "application/json"}}),
        ("DELETE", f"/v1/conversations/{cid}", {"content": b"", "headers": {}}),
        ("DELETE", "/v1/conversations", {"json": {}}),
        ("GET", "/v1/messages/%00/suggested", {"params": {"user": "alice"}}),
        ("GET", "/v1/end-users/" + "x" * 500, {}),
        ("PATCH", "/v1/conversations", {"json": {}}),
    ]
    for method, url, kwargs in requests:
        headers = {**h, **kwargs.pop("headers", {})}
        r = await c.request(method, url, headers=headers, **kwargs)
        assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
        data = r.json()
        assert set(data) == {"code", "message", "status"} and data["status"] == r.status_code
    # after all that, the conversation is still there
    r = await c.get("/v1/messages", params={"conversation_id": cid, "user": "alice"}, headers=h)
    assert r.status_code == 200 and len(r.json()["data"]) == 1
