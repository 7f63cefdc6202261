"""Vendor errors map to Dify's codes; an unreachable endpoint is a clean error, not a hang."""

from __future__ import annotations

import httpx
import openai
import pytest

from parlour.providers.base import Finish, TextDelta, Usage
from parlour.providers.openai_compat import _parse_line, map_error
from tests.conftest import Server, free_port
from tests.sse import stream_chat

REQUEST = httpx.Request("POST", "http://upstream/v1/chat/completions")


def status_error(
    cls: type[openai.APIStatusError], status: int, code: str | None = None
) -> openai.APIStatusError:
    body = {"message": "upstream says no", "code": code}  # the SDK passes the inner object
    return cls("upstream says no", response=httpx.Response(status, request=REQUEST), body=body)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (status_error(openai.AuthenticationError, 401), "completion_request_error"),
        (status_error(openai.RateLimitError, 429), "completion_request_error"),
        (status_error(openai.RateLimitError, 429, "insufficient_quota"), "provider_quota_exceeded"),
        (status_error(openai.NotFoundError, 404), "model_currently_not_support"),
        (status_error(openai.PermissionDeniedError, 403), "provider_not_initialize"),
        (status_error(openai.BadRequestError, 400), "completion_request_error"),
        (status_error(openai.InternalServerError, 500), "completion_request_error"),
        (openai.APIConnectionError(request=REQUEST), "completion_request_error"),
    ],
)
def test_error_mapping(exc: openai.OpenAIError, code: str) -> None:
    mapped = map_error(exc)
    assert mapped.code == code and mapped.status == 400 and mapped.message


def test_parse_stream_lines() -> None:
    assert _parse_line(": keep-alive") == []
    assert _parse_line("data: [DONE]") == []
    line = 'data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}'
    assert _parse_line(line) == [TextDelta("Hi")]
    end = (
        'data: {"choices":[{"delta":{},"finish_reason":"stop"}],'
        '"usage":{"prompt_tokens":3,"completion_tokens":1}}'
    )
    assert _parse_line(end) == [Finish("stop"), Usage(3, 1)]


async def test_unreachable_endpoint_is_an_error_event_and_json(server: Server) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    key = await server.new_app("dead", "openai:some-model", model={"base_url": dead})
    r, frames = await stream_chat(server.client, server.auth(key), query="hi", user="u")
    assert r.status_code == 200 and frames[-1]["event"] == "error"
    assert frames[-1]["code"] == "completion_request_error" and frames[-1]["status"] == 400
    assert frames[-1]["message"] == "Connection Error"
    r = await server.client.post(
        "/v1/chat-messages", json={"query": "hi", "user": "u", "response_mode": "blocking"},
        headers=server.auth(key),
    )
    assert r.status_code == 400 and r.json()["code"] == "completion_request_error"


async def test_unknown_provider_is_provider_not_initialize(server: Server) -> None:
    key = await server.new_app("odd", "nosuch:model")
    r = await server.client.post(
        "/v1/chat-messages", json={"query": "hi", "user": "u"}, headers=server.auth(key)
    )
    assert r.status_code == 400 and r.json()["code"] == "provider_not_initialize"
