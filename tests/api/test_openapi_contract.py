"""parlour's published OpenAPI covers the seed spec, and what every endpoint answers validates
against the seed spec's response schemas (jsonschema, not hand-written asserts)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema

from tests.api.helpers import set_config
from tests.conftest import Server
from tests.spec import _to_json_schema, spec

METHODS = ("get", "post", "put", "patch", "delete")


def seed_operations() -> set[tuple[str, str]]:
    return {(m, p) for p, ops in spec()["paths"].items() for m in ops if m in METHODS}


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    """The seed spec's JSON schema of one response (``$ref`` to components resolved)."""
    responses = spec()["paths"][path][method]["responses"]
    if status == 201 and "201" not in responses:
        status = 200  # the seed documents 200 where Dify answers 201 (upload, annotation)
    if str(status) not in responses and status >= 400:  # errors the seed leaves out
        schema = {"$ref": "#/components/schemas/ErrorResponse"}
        return {**schema, "components": _to_json_schema(spec()["components"])}
    response = responses[str(status)]
    if "$ref" in response:
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    return {**_to_json_schema(schema), "components": _to_json_schema(spec()["components"])}


def check(method: str, path: str, r: httpx.Response) -> None:
    schema = response_schema(method, path, r.status_code)
    if r.content and not r.headers.get("content-type", "").startswith("application/json"):
        documented = spec()["paths"][path][method]["responses"][str(r.status_code)]["content"]
        assert documented, (method, path)  # bytes (a file, audio) where the seed has them
        return
    if schema is None:
        assert r.content == b"", (method, path)
        return
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(r.json())]
    assert not errors, (method, path, errors)


async def test_every_seed_operation_is_published(server: Server) -> None:
    ours = (await server.client.get("/v1/openapi.json")).json()["paths"]
    published = {(m, p.removeprefix("/v1")) for p, ops in ours.items() for m in ops}
    missing = seed_operations() - published
    assert not missing, f"missing: {sorted(missing)}"
    assert (await server.client.get("/docs")).status_code == 200


async def test_recorded_responses_validate_against_the_seed_schemas(server: Server) -> None:
    await set_config(
        server,
        suggested_questions_after_answer={"enabled": True},
        conversation_variables=[{"name": "city", "value_type": "string", "value": "Oslo"}],
        user_input_form=[{"text-input": {"label": "Name", "variable": "name",
                                         "required": False, "default": ""}}],
    )
    server.fake.script = lambda msgs: '["One?", "Two?"]'
    u = {"user": "alice"}
    h = server.auth()
    c = server.client
    chat = await server.chat("hello", inputs={"name": "Ada"}, auto_generate_name=False)
    body = chat.json()
    cid, mid = body["conversation_id"], body["message_id"]
    variable = (await c.get(f"/v1/conversations/{cid}/variables", params=u, headers=h)).json()
    vid = variable["data"][0]["id"]
    recorded: list[tuple[str, str, httpx.Response]] = [
        ("post", "/chat-messages", chat),
        ("post", "/chat-messages/{task_id}/stop",
         await c.post(f"/v1/chat-messages/{body['task_id']}/stop", json=u, headers=h)),
        ("post", "/messages/{message_id}/feedbacks",
         await c.post(f"/v1/messages/{mid}/feedbacks",
                      json={**u, "rating": "like", "content": "good"}, headers=h)),
        ("get", "/app/feedbacks", await c.get("/v1/app/feedbacks", headers=h)),
        ("get", "/messages/{message_id}/suggested",
         await c.get(f"/v1/messages/{mid}/suggested", params=u, headers=h)),
        ("get", "/messages",
         await c.get("/v1/messages", params={**u, "conversation_id": cid}, headers=h)),
        ("get", "/conversations", await c.get("/v1/conversations", params=u, headers=h)),
        ("post", "/conversations/{conversation_id}/name",
         await c.post(f"/v1/conversations/{cid}/name", json={**u, "name": "N"}, headers=h)),
        ("get", "/conversations/{conversation_id}/variables",
         await c.get(f"/v1/conversations/{cid}/variables", params=u, headers=h)),
        ("get", "/conversations/{conversation_id}/variables",
         await c.get("/v1/conversations/6b3b1c43-49b5-4a0a-8f6b-8d8f0f0b8f00/variables",
                     params=u, headers=h)),
        ("get", "/info", await c.get("/v1/info", headers=h)),
        ("get", "/parameters", await c.get("/v1/parameters", params=u, headers=h)),
        ("get", "/meta", await c.get("/v1/meta", headers=h)),
        ("get", "/site", await c.get("/v1/site", headers=h)),
        ("post", "/chat-messages",
         await c.post("/v1/chat-messages", json={"user": "u"}, headers=h)),
        ("delete", "/conversations/{conversation_id}",
         await c.request("DELETE", f"/v1/conversations/{cid}", json=u, headers=h)),
    ]
    upload = await c.post("/v1/files/upload", files={"file": ("a.png", b"\x89PNG", "image/png")},
                          data=u, headers=h)
    fid = upload.json()["id"]
    await set_config(server, file_upload={"image": {"enabled": True}})
    await server.chat("see", files=[{"transfer_method": "local_file", "upload_file_id": fid}])
    recorded += [
        ("post", "/files/upload", upload),
        ("get", "/files/{file_id}/preview", await c.get(f"/v1/files/{fid}/preview", headers=h)),
        ("post", "/audio-to-text",  # no speech endpoint configured: provider_not_initialize
         await c.post("/v1/audio-to-text", files={"file": ("a.mp3", b"ID3", "audio/mp3")},
                      headers=h)),
        ("post", "/text-to-audio",
         await c.post("/v1/text-to-audio", json={**u, "text": "hi", "voice": "alloy"},
                      headers=h)),
    ]
    made = await c.post("/v1/apps/annotations", json={"question": "Q", "answer": "A"}, headers=h)
    aid = made.json()["id"]
    job = await c.post("/v1/apps/annotation-reply/disable", json={"score_threshold": 0.9},
                       headers=h)
    recorded += [
        ("post", "/apps/annotations", made),
        ("get", "/apps/annotations", await c.get("/v1/apps/annotations", headers=h)),
        ("put", "/apps/annotations/{annotation_id}",
         await c.put(f"/v1/apps/annotations/{aid}", json={"question": "Q2", "answer": "A2"},
                     headers=h)),
        ("post", "/apps/annotation-reply/{action}", job),
        ("get", "/apps/annotation-reply/{action}/status/{job_id}",
         await c.get(f"/v1/apps/annotation-reply/disable/status/{job.json()['job_id']}",
                     headers=h)),
        ("delete", "/apps/annotations/{annotation_id}",
         await c.delete(f"/v1/apps/annotations/{aid}", headers=h)),
    ]
    put = await c.put(f"/v1/conversations/{cid}/variables/{vid}", json={**u, "value": "x"},
                      headers=h)
    assert put.status_code == 404  # the conversation was deleted just above
    covered = {(m, p) for m, p, _ in recorded}
    assert covered == seed_operations()
    for method, path, r in recorded:
        assert r.status_code in (200, 201, 204, 400, 404), (method, path, r.status_code, r.text)
        check(method, path, r)
