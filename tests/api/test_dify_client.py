"""Every method of the published ``dify-client`` (PyPI 0.1.10) against the real server, on
both databases: the SDK's own requests, headers and bodies."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from dify_client import ChatClient, CompletionClient, DifyClient

from tests.api.helpers import set_config
from tests.conftest import Server


def client(server: Server, cls: type[DifyClient] = ChatClient) -> Any:
    c = cls(server.key)
    c.base_url = server.base + "/v1"
    return c


async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_every_sdk_method(server: Server) -> None:
    await set_config(server, suggested_questions=["Hi?"])
    sdk = client(server)
    r = await call(sdk.get_application_parameters, "sdk-user")
    assert r.status_code == 200 and r.json()["suggested_questions"] == ["Hi?"]
    r = await call(sdk.create_chat_message, {}, "first question", "sdk-user")
    assert r.status_code == 200
    cid, mid = r.json()["conversation_id"], r.json()["message_id"]

    def stream() -> list[dict[str, Any]]:  # read in the thread: the server shares this loop
        r = sdk.create_chat_message({}, "second", "sdk-user", response_mode="streaming",
                                    conversation_id=cid)
        return [json.loads(line[6:]) for line in r.iter_lines(decode_unicode=True)
                if line.startswith("data: ")]

    frames = await call(stream)
    assert frames[-1]["event"] == "message_end" and frames[-1]["conversation_id"] == cid
    r = await call(sdk.message_feedback, mid, "like", "sdk-user")
    assert r.status_code == 200 and r.json() == {"result": "success"}
    r = await call(sdk.message_feedback, mid, None, "sdk-user")  # revoke
    assert r.status_code == 200
    r = await call(sdk.get_conversation_messages, "sdk-user", cid, limit=1)
    page = r.json()
    assert page["has_more"] is True and page["data"][0]["query"] == "second"
    r = await call(sdk.get_conversation_messages, "sdk-user", cid, first_id=page["data"][0]["id"])
    assert [m["query"] for m in r.json()["data"]] == ["first question"]
    assert r.json()["data"][0]["feedback"] is None
    r = await call(sdk.get_conversations, "sdk-user", limit=5, pinned=False)
    assert r.status_code == 200 and r.json()["data"][0]["id"] == cid
    r = await call(sdk.rename_conversation, cid, "Renamed", "sdk-user")
    assert r.status_code == 200 and r.json()["name"] == "Renamed"
    r = await call(sdk.get_conversation_messages, "sdk-user")  # no conversation_id
    assert r.status_code == 400 and r.json()["code"] == "invalid_param"
    r = await call(sdk.file_upload, "sdk-user", {"file": ("a.txt", b"hi", "text/plain")})
    assert r.status_code == 201 and r.json()["name"] == "a.txt" and r.json()["size"] == 2
    await set_config(server, file_upload={"enabled": True})
    fid = r.json()["id"]
    files = [{"type": "document", "transfer_method": "local_file", "upload_file_id": fid}]
    r = await call(sdk.create_chat_message, {}, "read this", "sdk-user", files=files)
    assert r.status_code == 200, r.text
    r = await call(sdk.get_conversation_messages, "sdk-user", r.json()["conversation_id"])
    assert r.json()["data"][0]["message_files"][0]["filename"] == "a.txt"
    r = await call(client(server, CompletionClient).create_completion_message, {}, "blocking",
                   "sdk-user")
    assert r.status_code == 404 and r.json()["code"] == "not_found"  # chat apps only
