"""Hostile input: oversized and chunked bodies, deep nesting, broken UTF-8, NUL characters,
huge ``inputs`` and very long ``user`` values. Each answer is a Dify-shaped 4xx, or a 200 where
the request is legitimately accepted; nothing accepted before is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from tests.api.helpers import set_config
from tests.conftest import Server

JSON = {"Content-Type": "application/json"}


def assert_error(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"code", "message", "status"} and body["status"] == status, body


async def post_raw(server: Server, path: str, raw: bytes | AsyncIterator[bytes]) -> httpx.Response:
    return await server.client.post(path, content=raw, headers={**server.auth(), **JSON})


async def history(server: Server, cid: str, user: str = "alice") -> list[dict[str, Any]]:
    r = await server.client.get(
        "/v1/messages", params={"conversation_id": cid, "user": user, "limit": 100},
        headers=server.auth(),
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def test_oversized_bodies_are_413_declared_or_chunked(server: Server) -> None:
    before = (await server.chat("keep me")).json()
    limit = server.settings.max_body_bytes
    pad = b"x" * (limit + 1)
    big = b'{"query": "' + pad + b'", "user": "alice", "response_mode": "blocking"}'
    assert_error(await post_raw(server, "/v1/chat-messages", big), 413)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"query": "'
        for _ in range(limit // 65536 + 4):
            yield b"y" * 65536
        yield b'", "user": "alice"}'

    assert_error(await post_raw(server, "/v1/chat-messages", chunked()), 413)
    cid = before["conversation_id"]
    for path in (f"/v1/conversations/{cid}/name", f"/v1/messages/{before['message_id']}/feedbacks"):
        assert_error(await post_raw(server, path, b'{"name": "' + pad + b'"}'), 413)
    # just under the limit is an ordinary request
    ok = b'{"query": "' + b"z" * (limit - 200) + b'", "user": "alice", "response_mode": "blocking"}'
    assert (await post_raw(server, "/v1/chat-messages", ok)).status_code == 200
    assert [m["query"] for m in await history(server, cid)] == ["keep me"]


async def test_deeply_nested_json_is_a_400_not_a_crash(server: Server) -> None:
    before = (await server.chat("keep me")).json()
    cid = before["conversation_id"]
    bombs = [
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b'{"query": "q", "user": "alice", "inputs": {"x": ' + b"[" * 100_000,
        # valid JSON, parsed fine, but deeper than any store's encoder goes
        b'{"query": "q", "user": "alice", "response_mode": "blocking", "inputs": {"x": '
        + b"[" * 300 + b"]" * 300 + b"}}",
    ]
    for raw in bombs:
        assert_error(await post_raw(server, "/v1/chat-messages", raw), 400)
        assert_error(await post_raw(server, f"/v1/conversations/{cid}/name", raw), 400)
    # modest nesting is data like any other: stored and given back
    nested: Any = "leaf"
    for _ in range(40):
        nested = {"n": nested}
    r = await server.chat("nested", inputs={"deep": nested}, conversation_id=cid)
    assert r.status_code == 200, r.text
    stored = await history(server, cid)
    assert [m["query"] for m in stored] == ["keep me", "nested"]
    assert (await server.chat("still fine")).status_code == 200


async def test_invalid_utf8_and_lone_surrogates_are_400(server: Server) -> None:
    before = (await server.chat("keep me")).json()
    cid = before["conversation_id"]
    for raw in (
        b'{"query": "\xff\xfe", "user": "alice"}',
        b'{"query": "\xc0\xaf", "user": "alice"}',  # overlong encoding of "/"
        b'{"query": "\xe2\x82", "user": "alice"}',  # truncated sequence
        b'{"query": "\\ud800", "user": "alice"}',  # lone surrogate escape
        b"\xef\xbb\xbf\x00\x00",
    ):
        assert_error(await post_raw(server, "/v1/chat-messages", raw), 400)
        assert_error(await post_raw(server, f"/v1/conversations/{cid}/name", raw), 400)
    # broken UTF-8 in the query string: never a 5xx, and no one else's data
    r = await server.client.get(
        "/v1/conversations?user=%ff%fe", headers=server.auth()
    )
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert r.json()["data"] == []
    assert [m["query"] for m in await history(server, cid)] == ["keep me"]


async def test_huge_inputs_are_accepted_within_the_limit_and_kept(server: Server) -> None:
    inputs = {f"k{i}": f"v{i}" for i in range(40_000)}  # about 700 KB of JSON
    r = await server.chat("big inputs", inputs=inputs)
    assert r.status_code == 200, r.text[:300]
    stored = await history(server, r.json()["conversation_id"])
    assert stored[0]["inputs"] == inputs
    too_many = {f"k{i}": "v" * 20 for i in range(60_000)}
    payload = {"query": "q", "user": "alice", "inputs": too_many}
    assert_error(await post_raw(server, "/v1/chat-messages", orjson.dumps(payload)), 413)
    # a declared form keeps only its variables, and objects are refused for text fields
    await set_config(server, user_input_form=[{"text-input": {
        "label": "Name", "variable": "name", "required": False, "max_length": 48}}])
    r = await server.chat("form", inputs={**inputs, "name": "Ada"})
    assert r.status_code == 200
    assert (await history(server, r.json()["conversation_id"]))[0]["inputs"] == {"name": "Ada"}
    assert_error(await server.chat("form", inputs={"name": {"x": [1] * 1000}}), 400)


async def test_nul_characters_are_dropped_everywhere(server: Server) -> None:
    """PostgreSQL text cannot hold NUL: it is dropped from every string, keys included."""
    await set_config(server, conversation_variables=[
        {"name": "note", "value_type": "string", "value": ""}])
    r = await post_raw(server, "/v1/chat-messages", b'{"query": "a\\u0000b", "user": '
                       b'"al\\u0000ice", "response_mode": "blocking", '
                       b'"inputs": {"k\\u0000": "v\\u0000", "list": ["\\u0000"]}}')
    assert r.status_code == 200, r.text
    body = r.json()
    cid, mid = body["conversation_id"], body["message_id"]
    [message] = await history(server, cid, "alice")
    assert message["query"] == "ab" and message["inputs"] == {"k": "v", "list": [""]}
    h = server.auth()
    r = await server.client.post(f"/v1/conversations/{cid}/name",
                                 json={"name": "n\x00ame", "user": "alice"}, headers=h)
    assert r.status_code == 200 and r.json()["name"] == "name"
    r = await server.client.post(f"/v1/messages/{mid}/feedbacks", headers=h,
                                 json={"rating": "like", "content": "g\x00ood", "user": "alice"})
    assert r.status_code == 200, r.text
    feedback = (await server.client.get("/v1/app/feedbacks", headers=h)).json()["data"]
    assert feedback[0]["content"] == "good"
    variables = await server.client.get(f"/v1/conversations/{cid}/variables",
                                        params={"user": "al\x00ice"}, headers=h)
    assert variables.status_code == 200, variables.text
    vid = variables.json()["data"][0]["id"]
    r = await server.client.put(f"/v1/conversations/{cid}/variables/{vid}", headers=h,
                                json={"value": "x\x00y", "user": "alice"})
    assert r.status_code == 200 and r.json()["value"] == "xy"
    r = await server.client.get("/v1/conversations", params={"user": "\x00"}, headers=h)
    assert r.status_code == 200  # only NUL: no user, as an empty one
    assert_error(await server.chat("q", user="\x00"), 400)


async def test_very_long_user_values_are_400_and_255_is_fine(server: Server) -> None:
    before = (await server.chat("keep me")).json()
    cid, mid = before["conversation_id"], before["message_id"]
    h = server.auth()
    assert (await server.chat("edge", user="u" * 255)).status_code == 200
    for long_user in ("u" * 256, "é" * 10_000, "u" * 60_000):
        assert_error(await server.chat("q", user=long_user), 400)
        params = {"user": long_user}
        assert_error(await server.client.get("/v1/conversations", params=params, headers=h), 400)
        assert_error(await server.client.get(
            "/v1/messages", params={**params, "conversation_id": cid}, headers=h), 400)
        assert_error(await server.client.request(
            "DELETE", f"/v1/conversations/{cid}", json=params, headers=h), 400)
        assert_error(await server.client.post(
            f"/v1/messages/{mid}/feedbacks", json={**params, "rating": "like"}, headers=h), 400)
        assert_error(await server.client.post(
            f"/v1/chat-messages/{before['task_id']}/stop", json=params, headers=h), 400)
    assert [m["query"] for m in await history(server, cid)] == ["keep me"]
