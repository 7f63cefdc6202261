"""GET /v1/conversations/{id}/variables and PUT/PATCH …/variables/{variable_id}."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import auth, second_app, set_config
from tests.conftest import Server

DECLARED: list[dict[str, Any]] = [
    {"name": "city", "value_type": "string", "value": "Paris", "description": "Where"},
    {"name": "count", "value_type": "number", "value": 1},
    {"name": "vip", "value_type": "boolean", "value": False},
    {"name": "profile", "value_type": "object", "value": {"tier": "gold"}},
    {"name": "tags", "value_type": "array[string]", "value": []},
    {"name": "resp_code", "type": "integer", "default": None},
]


async def variables(server: Server, cid: str, key: str | None = None, **params: Any):  # type: ignore[no-untyped-def]
    return await server.client.get(f"/v1/conversations/{cid}/variables",
                                   params={"user": "alice", **params}, headers=server.auth(key))


async def put(server: Server, cid: str, vid: str, method: str = "PUT", **body: Any
              ) -> httpx.Response:
    return await server.client.request(
        method, f"/v1/conversations/{cid}/variables/{vid}", json={"user": "alice", **body},
        headers=server.auth(),
    )


async def test_declared_variables_are_per_conversation_typed_and_in_the_prompt(
    server: Server,
) -> None:
    await set_config(server, conversation_variables=DECLARED, pre_prompt="City: {{city}}.")
    cid = (await server.chat("hi", auto_generate_name=False)).json()["conversation_id"]
    assert server.fake.calls[-1][0].content == "City: Paris."
    body = (await variables(server, cid)).json()
    assert body["limit"] == 20 and body["has_more"] is False
    data = {v["name"]: v for v in body["data"]}
    assert [v["name"] for v in body["data"]] == [d["name"] for d in DECLARED]
    assert data["city"]["value"] == "Paris" and data["city"]["description"] == "Where"
    assert data["count"]["value"] == 1 and data["vip"]["value"] is False
    assert data["profile"]["value"] == {"tier": "gold"}
    assert data["resp_code"]["value_type"] == "number" and data["resp_code"]["value"] is None
    assert set(data["city"]) == {
        "id", "name", "value_type", "value", "description", "created_at", "updated_at",
    }
    r = await put(server, cid, data["city"]["id"], value="Rome")
    assert r.status_code == 200 and r.json()["value"] == "Rome"
    r = await put(server, cid, data["tags"]["id"], method="PATCH", value=["a", "b"])
    assert r.status_code == 200 and r.json()["value"] == ["a", "b"]
    await server.chat("again", conversation_id=cid)
    assert server.fake.calls[-1][0].content == "City: Rome."
    other = (await server.chat("new", auto_generate_name=False)).json()["conversation_id"]
    others = {v["name"]: v for v in (await variables(server, other)).json()["data"]}
    assert others["city"]["value"] == "Paris" and others["city"]["id"] != data["city"]["id"]


async def test_type_checks_and_errors(server: Server) -> None:
    await set_config(server, conversation_variables=DECLARED)
    cid = (await server.chat("hi")).json()["conversation_id"]
    data = {v["name"]: v["id"] for v in (await variables(server, cid)).json()["data"]}
    bad = [("city", 5, "string", "number"), ("count", "1", "number", "string"),
           ("count", True, "number", "boolean"), ("vip", "yes", "boolean", "string"),
           ("profile", [1], "object", "array"), ("tags", ["a", 1], "array[string]", "array"),
           ("resp_code", "x", "number", "string")]
    for name, value, expects, got in bad:
        r = await put(server, cid, data[name], value=value)
        assert r.status_code == 400, name
        assert r.json() == {
            "code": "bad_request", "status": 400,
            "message": f"Type mismatch: variable '{name}' expects {expects}, but got {got} type",
        }
    assert (await put(server, cid, data["count"], value=2.5)).json()["value"] == 2.5
    assert (await put(server, cid, data["count"], value=None)).json()["value"] is None
    r = await server.client.put(f"/v1/conversations/{cid}/variables/{data['city']}",
                                json={"user": "alice"}, headers=server.auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_param")
    r = await put(server, cid, "6b3b1c43-49b5-4a0a-8f6b-8d8f0f0b8f00", value="x")
    assert r.status_code == 404 and r.json()["message"] == "Conversation Variable Not Exists."
    r = await put(server, cid, "nope", value="x")
    assert r.status_code == 404 and r.json()["message"] == "Conversation Variable Not Exists."
    r = await server.client.put(f"/v1/conversations/{cid}/variables/{data['city']}",
                                json={"user": "bob", "value": "x"}, headers=server.auth())
    assert r.status_code == 404 and r.json()["message"] == "Conversation Not Exists."


async def test_filter_paging_and_scoping(server: Server) -> None:
    await set_config(server, conversation_variables=DECLARED)
    cid = (await server.chat("hi")).json()["conversation_id"]
    body = (await variables(server, cid, variable_name="C")).json()
    assert [v["name"] for v in body["data"]] == ["city", "count", "resp_code"]
    first = (await variables(server, cid, limit=2)).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = (await variables(server, cid, limit=10, last_id=first["data"][-1]["id"])).json()
    assert [v["name"] for v in first["data"] + rest["data"]] == [d["name"] for d in DECLARED]
    for params in ({"limit": 0}, {"variable_name": "a'b"}, {"variable_name": "x" * 256},
                   {"last_id": "6b3b1c43-49b5-4a0a-8f6b-8d8f0f0b8f00"}, {"last_id": "x"}):
        r = await variables(server, cid, **params)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_param"), params
    r = await variables(server, cid, user="bob")
    assert r.status_code == 404 and r.json()["message"] == "Conversation Not Exists."
    _, other_key = await second_app(server)
    r = await server.client.get(f"/v1/conversations/{cid}/variables", params={"user": "alice"},
                                headers=auth(other_key))
    assert r.status_code == 404


async def test_app_without_variables_and_later_declarations(server: Server) -> None:
    cid = (await server.chat("hi")).json()["conversation_id"]
    assert (await variables(server, cid)).json()["data"] == []
    await set_config(server, conversation_variables=DECLARED[:1])
    names = [v["name"] for v in (await variables(server, cid)).json()["data"]]
    assert names == ["city"]
