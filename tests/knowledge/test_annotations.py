"""Annotations over the API (scoped to the app), annotation reply as a job with the real
embedded model, and the chat path answering from an annotation without calling the model."""

from __future__ import annotations

import asyncio
from typing import Any

from parlour.retrieval.embedders import EmbedderRegistry
from tests.api.helpers import auth, second_app
from tests.conftest import Server
from tests.sse import stream_chat

JOB_BODY = {"score_threshold": 0.8, "embedding_provider_name": "huggingface",
            "embedding_model_name": "all-MiniLM-L6-v2"}


async def create(server: Server, q: str, a: str, key: str | None = None) -> dict[str, Any]:
    r = await server.client.post("/v1/apps/annotations", json={"question": q, "answer": a},
                                 headers=server.auth(key))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def run_job(server: Server, action: str, body: dict[str, Any]) -> dict[str, Any]:
    h = server.auth()
    r = await server.client.post(f"/v1/apps/annotation-reply/{action}", json=body, headers=h)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["job_status"] == "waiting"
    for _ in range(200):
        r = await server.client.get(
            f"/v1/apps/annotation-reply/{action}/status/{job['job_id']}", headers=h)
        status = r.json()
        if status["job_status"] != "waiting":
            return dict(status)
        await asyncio.sleep(0.05)
    raise AssertionError("the job never finished")


async def test_crud_paging_and_app_scope(server: Server) -> None:
    h, c = server.auth(), server.client
    made = [await create(server, f"Question {i}", f"Answer {i}") for i in range(5)]
    assert made[0]["hit_count"] == 0 and isinstance(made[0]["created_at"], int)
    r = await c.get("/v1/apps/annotations", params={"page": 1, "limit": 2}, headers=h)
    body = r.json()
    assert body["total"] == 5 and body["has_more"] is True and len(body["data"]) == 2
    assert body["data"][0]["id"] == made[-1]["id"]  # newest first
    r = await c.get("/v1/apps/annotations", params={"page": 3, "limit": 2}, headers=h)
    assert r.json()["has_more"] is False and len(r.json()["data"]) == 1
    r = await c.get("/v1/apps/annotations", params={"page": "x", "limit": "500"}, headers=h)
    assert (r.json()["page"], r.json()["limit"]) == (1, 100)
    r = await c.get("/v1/apps/annotations", params={"keyword": "ANSWER 3"}, headers=h)
    assert [a["id"] for a in r.json()["data"]] == [made[3]["id"]]
    r = await c.get("/v1/apps/annotations", params={"keyword": "%"}, headers=h)
    assert r.json()["total"] == 0
    aid = made[0]["id"]
    r = await c.put(f"/v1/apps/annotations/{aid}", json={"question": "Q", "answer": "A"},
                    headers=h)
    assert r.status_code == 200 and (r.json()["question"], r.json()["answer"]) == ("Q", "A")
    r = await c.put(f"/v1/apps/annotations/{aid}", json={"question": "Q"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_param")
    r = await c.post("/v1/apps/annotations", json={"question": 1, "answer": "A"}, headers=h)
    assert r.status_code == 400
    # another app's key cannot see, change or delete them (Dify's lookup is by id alone)
    _, other = await second_app(server)
    r = await c.put(f"/v1/apps/annotations/{aid}", json={"question": "x", "answer": "y"},
                    headers=auth(other))
    assert r.json() == {"code": "not_found", "message": "Annotation not found", "status": 404}
    r = await c.delete(f"/v1/apps/annotations/{aid}", headers=auth(other))
    assert r.status_code == 404
    r = await c.get("/v1/apps/annotations", headers=auth(other))
    assert r.json()["total"] == 0
    r = await c.delete(f"/v1/apps/annotations/{aid}", headers=h)
    assert r.status_code == 204 and r.content == b""
    r = await c.delete(f"/v1/apps/annotations/{aid}", headers=h)
    assert r.status_code == 404
    r = await c.delete("/v1/apps/annotations/not-a-uuid", headers=h)
    assert r.status_code == 404


async def test_job_errors(server: Server) -> None:
    h, c = server.auth(), server.client
    r = await c.post("/v1/apps/annotation-reply/enable", json={}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_param")
    r = await c.post("/v1/apps/annotation-reply/toggle", json=JOB_BODY, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_param")
    r = await c.get("/v1/apps/annotation-reply/enable/status/nope", headers=h)
    assert r.json() == {"code": "invalid_param", "message": "The job does not exist.",
                        "status": 400}
    server.state.annotations.default_model = "nope:model"
    status = await run_job(server, "enable", JOB_BODY)
    assert status["job_status"] == "error" and "nope:model" in status["error_msg"]
    _, other = await second_app(server)
    r = await c.get(f"/v1/apps/annotation-reply/enable/status/{status['job_id']}",
                    headers=auth(other))
    assert r.status_code == 400  # another app's job does not exist for this key


async def test_annotation_reply_answers_without_the_model(
    server: Server, embedders: EmbedderRegistry
) -> None:
    server.state.knowledge.embedders = embedders  # the session's loaded model
    await create(server, "What are your opening hours?", "We are open 9 to 5, Monday to Friday.")
    await create(server, "How do I reset my password?", "Use the 'Forgot password' link.")
    calls: list[Any] = []
    server.fake.script = lambda msgs: calls.append(msgs) or "from the model"
    status = await run_job(server, "enable", JOB_BODY)
    assert status == {"job_id": status["job_id"], "job_status": "completed", "error_msg": ""}
    late = await create(server, "Where is the office?", "Main Street 1.")  # indexed on create
    r = await server.chat("what are your opening hours", auto_generate_name=False)
    body = r.json()
    assert body["answer"] == "We are open 9 to 5, Monday to Friday."
    reply = body["metadata"]["annotation_reply"]
    assert reply["account"]["name"] and reply["id"]
    assert calls == []
    _, frames = await stream_chat(server.client, server.auth(), query="How can I reset my "
                                  "password?", user="alice", auto_generate_name=False)
    assert [f["event"] for f in frames] == ["message", "message_end"]
    assert frames[0]["answer"] == "Use the 'Forgot password' link."
    assert frames[-1]["metadata"]["annotation_reply"]["account"]["id"]
    for _ in range(100):
        if (await server.chat("where is the office?")).json()["answer"] == "Main Street 1.":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"annotation {late['id']} was never indexed")
    # below the threshold: the model answers
    r = await server.chat("tell me a joke about penguins")
    assert r.json()["answer"] == "from the model" and r.json()["metadata"]["annotation_reply"] \
        is None
    listed = (await server.client.get("/v1/apps/annotations", headers=server.auth())).json()
    hits = {a["question"]: a["hit_count"] for a in listed["data"]}
    assert hits["What are your opening hours?"] == 1
    history = await server.client.get("/v1/messages", headers=server.auth(), params={
        "user": "alice", "conversation_id": body["conversation_id"]})
    assert history.json()["data"][0]["answer"] == "We are open 9 to 5, Monday to Friday."
    status = await run_job(server, "disable", {})
    assert status["job_status"] == "completed"
    r = await server.chat("what are your opening hours")
    assert r.json()["answer"] == "from the model"
