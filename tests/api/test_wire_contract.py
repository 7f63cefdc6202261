"""Our frames and bodies against the seed spec: its schemas and its event examples."""

from __future__ import annotations

from typing import Any

from parlour.errors import CompletionRequestError
from tests.conftest import Server
from tests.spec import check, stream_examples
from tests.sse import stream_chat

SCHEMA_OF = {
    "message": "StreamEventChatMessage",
    "message_end": "StreamEventChatMessageEnd",
    "error": "StreamEventChatError",
}


def _types(value: Any) -> str:
    return type(value).__name__


async def test_stream_frames_match_spec_schemas_and_examples(server: Server) -> None:
    _, frames = await stream_chat(server.client, server.auth(), query="hi there", user="u")
    server.fake.fail_with, server.fake.fail_after = CompletionRequestError("boom"), 1
    _, failed = await stream_chat(server.client, server.auth(), query="x y", user="u")
    ours = {f["event"]: f for f in frames + failed}
    assert set(ours) >= {"message", "message_end", "error"}
    for event, frame in ours.items():
        check(SCHEMA_OF[event], frame)
    examples = [e for e in stream_examples() if e["event"] in SCHEMA_OF]
    assert examples, "the spec's streaming examples were not found"
    for example in examples:
        frame = ours[example["event"]]
        for key, value in example.items():
            assert key in frame, f"{example['event']} lacks {key}"
            if value is not None and key != "metadata":
                assert _types(frame[key]) == _types(value), (example["event"], key)
        if example["event"] == "message_end" and "usage" in example.get("metadata", {}):
            for key, value in example["metadata"]["usage"].items():
                assert _types(frame["metadata"]["usage"][key]) == _types(value), key


async def test_blocking_body_matches_spec(server: Server) -> None:
    body = (await server.chat("hello")).json()
    check("ChatCompletionResponse", body)


async def test_errors_match_spec(server: Server) -> None:
    r = await server.client.post("/v1/chat-messages", json={"user": "u"}, headers=server.auth())
    check("ErrorResponse", r.json())
