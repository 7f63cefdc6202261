"""Isolation, property-style: two apps, two users in one of them and a namesake user in the
other. Hypothesis draws (actor, owner, endpoint, payload) with actor != owner and sends the
request with the actor's key and ``user``: every read and write endpoint answers as for a missing
resource, and at the end every owner's conversations, messages, variables and feedback are
exactly as before."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.helpers import end_user_id, second_app, set_config
from tests.conftest import Server

SETUP = {
    "suggested_questions_after_answer": {"enabled": True},
    "conversation_variables": [{"name": "city", "value_type": "string", "value": "Oslo"}],
}


@dataclass(frozen=True)
class Owner:
    name: str
    key: str
    user: str
    app_id: str
    cid: str = ""
    mid: str = ""
    task_id: str = ""
    vid: str = ""
    end_user_id: str = ""


async def make_owner(server: Server, name: str, key: str, user: str, app_id: str) -> Owner:
    h = {"Authorization": f"Bearer {key}"}
    r = await server.client.post("/v1/chat-messages", headers=h, json={
        "query": f"secret of {name}", "user": user, "response_mode": "blocking"})
    body = r.json()
    cid = body["conversation_id"]
    vs = await server.client.get(f"/v1/conversations/{cid}/variables",
                                 params={"user": user}, headers=h)
    fb = await server.client.post(f"/v1/messages/{body['message_id']}/feedbacks", headers=h,
                                  json={"rating": "like", "content": name, "user": user})
    assert fb.status_code == 200
    return Owner(name, key, user, app_id, cid, body["message_id"], body["task_id"],
                 vs.json()["data"][0]["id"], await end_user_id(server, user, app_id))


def snapshot(c: httpx.Client, o: Owner) -> str:
    h = {"Authorization": f"Bearer {o.key}"}
    u = {"user": o.user}
    parts = [
        c.get("/v1/conversations", params=u, headers=h).json(),
        c.get("/v1/messages", params={**u, "conversation_id": o.cid}, headers=h).json(),
        c.get(f"/v1/conversations/{o.cid}/variables", params=u, headers=h).json(),
        [f for f in c.get("/v1/app/feedbacks", headers=h).json()["data"]
         if f["message_id"] == o.mid],
    ]
    return json.dumps(parts, sort_keys=True)


OPS = (
    "history", "list", "rename", "rename_auto", "delete", "variables", "put_variable",
    "patch_variable", "own_conversation_their_variable", "feedback", "revoke_feedback",
    "suggested", "chat_into", "stop", "end_user", "app_feedbacks",
)


def attempt(c: httpx.Client, actor: Owner, owner: Owner, op: str, text: str) -> None:
    """One cross request; asserts it saw or touched nothing of ``owner``'s."""
    h = {"Authorization": f"Bearer {actor.key}"}
    u = {"user": actor.user}
    cid, mid, vid = owner.cid, owner.mid, owner.vid
    calls = {
        "history": lambda: c.get("/v1/messages", params={**u, "conversation_id": cid}, headers=h),
        "rename": lambda: c.post(f"/v1/conversations/{cid}/name", headers=h,
                                 json={**u, "name": text.strip() or "x"}),
        "rename_auto": lambda: c.post(f"/v1/conversations/{cid}/name", headers=h,
                                      json={**u, "auto_generate": True}),
        "delete": lambda: c.request("DELETE", f"/v1/conversations/{cid}", json=u, headers=h),
        "variables": lambda: c.get(f"/v1/conversations/{cid}/variables", params=u, headers=h),
        "put_variable": lambda: c.put(f"/v1/conversations/{cid}/variables/{vid}", headers=h,
                                      json={**u, "value": text}),
        "patch_variable": lambda: c.patch(f"/v1/conversations/{cid}/variables/{vid}",
                                          headers=h, json={**u, "value": text}),
        "own_conversation_their_variable": lambda: c.put(
            f"/v1/conversations/{actor.cid}/variables/{vid}", headers=h,
            json={**u, "value": text}),
        "feedback": lambda: c.post(f"/v1/messages/{mid}/feedbacks", headers=h,
                                   json={**u, "rating": "dislike", "content": text}),
        "revoke_feedback": lambda: c.post(f"/v1/messages/{mid}/feedbacks", headers=h,
                                          json={**u, "rating": None}),
        "suggested": lambda: c.get(f"/v1/messages/{mid}/suggested", params=u, headers=h),
        "chat_into": lambda: c.post("/v1/chat-messages", headers=h, json={
            **u, "query": text or "q", "conversation_id": cid, "response_mode": "blocking"}),
    }
    if op in calls:
        r = calls[op]()
        assert r.status_code == 404, (op, r.status_code, r.text)
        assert r.json()["code"] == "not_found" and owner.name not in r.text, r.text
        return
    if op == "list":
        r = c.get("/v1/conversations", params={**u, "limit": 100}, headers=h)
        assert {x["id"] for x in r.json()["data"]} <= {actor.cid}, r.text
    elif op == "stop":
        r = c.post(f"/v1/chat-messages/{owner.task_id}/stop", json=u, headers=h)
        assert r.json() == {"result": "success"}  # as Dify: never tells whose the task is
    elif op == "end_user":
        r = c.get(f"/v1/end-users/{owner.end_user_id}", headers=h)
        if actor.app_id != owner.app_id:
            assert r.status_code == 404, r.text
    elif op == "app_feedbacks":
        r = c.get("/v1/app/feedbacks", headers=h)
        if actor.app_id != owner.app_id:
            assert all(f["app_id"] == actor.app_id for f in r.json()["data"]), r.text


def run_property(server: Server, owners: list[Owner], examples: int) -> None:
    with httpx.Client(base_url=server.base, timeout=20) as c:
        before = {o.name: snapshot(c, o) for o in owners}

        @given(
            actor=st.sampled_from(owners),
            owner=st.sampled_from(owners),
            op=st.sampled_from(OPS),
            text=st.text(max_size=12),
        )
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def cross(actor: Owner, owner: Owner, op: str, text: str) -> None:
            if actor == owner:
                return
            attempt(c, actor, owner, op, text)

        cross()
        after = {o.name: snapshot(c, o) for o in owners}
    assert after == before


async def test_no_endpoint_reads_or_changes_another_apps_or_users_data(server: Server) -> None:
    await set_config(server, **SETUP)
    b_app, other_key = await second_app(server)
    await set_config(server, app_id=b_app, **SETUP)
    owners = [
        await make_owner(server, "a-alice", server.key, "alice", server.app_id),
        await make_owner(server, "a-bob", server.key, "bob", server.app_id),
        await make_owner(server, "b-alice", other_key, "alice", b_app),
    ]
    await server.state.background.drain()  # their titles are stored: the snapshot is final
    await asyncio.to_thread(run_property, server, owners, 120)


async def test_another_app_cannot_stop_a_running_task(server: Server) -> None:
    """Same ``user`` string, same task id, another app's key: the stream runs to its end."""
    other_key = await server.new_app("other")
    server.fake.delay = 0.05
    body = {"query": "a b c d e f g h", "user": "alice", "response_mode": "streaming"}
    frames: list[dict[str, Any]] = []
    async with server.client.stream(
        "POST", "/v1/chat-messages", json=body, headers=server.auth()
    ) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
                if len(frames) == 1:
                    stop = await server.client.post(
                        f"/v1/chat-messages/{frames[0]['task_id']}/stop",
                        json={"user": "alice"}, headers=server.auth(other_key),
                    )
                    assert stop.json() == {"result": "success"}
    assert frames[-1]["event"] == "message_end"
    assert "".join(f["answer"] for f in frames if f["event"] == "message") == (
        "echo: a b c d e f g h"
    )
