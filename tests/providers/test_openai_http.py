"""The plain-aiohttp OpenAI-compatible client: the same answers and the same error codes as
the SDK client, against a real HTTP upstream (the shared mock, and a scripted failing one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from parlour.errors import ProviderError
from parlour.providers.base import ChatMessage, CompletionParams, TextDelta, Usage
from parlour.providers.openai_compat import OpenAIChatModel, make_client
from parlour.providers.openai_http import OpenAIHttpClient, OpenAIHttpModel
from tests.conftest import free_port
from tests.mock_llm import mock_llm
from tests.upstream import upstream

ASK = [ChatMessage("user", "hello")]


async def collect(model: OpenAIHttpModel | OpenAIChatModel) -> tuple[str, list[Usage]]:
    chunks = [c async for c in model.stream(ASK, CompletionParams())]
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    return text, [c for c in chunks if isinstance(c, Usage)]


async def test_same_answer_as_the_sdk_client() -> None:
    with mock_llm(free_port(), tokens=12) as base:
        http = OpenAIHttpClient(base, "", 30, 5)
        sdk = make_client(base, "", 30, 5)
        try:
            plain, plain_usage = await collect(OpenAIHttpModel(http, "mock-gpt"))
            via_sdk, sdk_usage = await collect(OpenAIChatModel(sdk, "mock-gpt"))
        finally:
            await http.close()
            await sdk.close()
    assert plain == via_sdk and plain.startswith("h") and plain.endswith(" tok11")
    assert plain_usage == sdk_usage and plain_usage[0].completion_tokens == 12


@pytest.fixture
async def failing_upstream() -> AsyncIterator[str]:
    async def handler(request: web.Request) -> web.Response:
        status = int(request.headers.get("X-Status", "500"))
        code = request.headers.get("X-Code")
        return web.json_response(
            {"error": {"message": f"status {status}", "code": code}}, status=status
        )

    async with upstream(handler) as base:
        yield base


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, None, "completion_request_error"),
        (403, None, "provider_not_initialize"),
        (404, None, "model_currently_not_support"),
        (429, None, "completion_request_error"),
        (429, "insufficient_quota", "provider_quota_exceeded"),
        (400, None, "completion_request_error"),
        (500, None, "completion_request_error"),
    ],
)
async def test_status_errors_map_to_dify_codes(
    failing_upstream: str, status: int, code: str | None, expected: str
) -> None:
    client = OpenAIHttpClient(failing_upstream, "", 30, 5)
    client.headers = {**client.headers, "X-Status": str(status)}
    if code:
        client.headers["X-Code"] = code
    try:
        with pytest.raises(ProviderError) as info:
            await collect(OpenAIHttpModel(client, "m"))
    finally:
        await client.close()
    assert info.value.code == expected and info.value.status == 400


async def test_whole_answer_in_one_response() -> None:
    with mock_llm(free_port(), tokens=5) as base:
        http = OpenAIHttpClient(base, "", 30, 5)
        try:
            model = OpenAIHttpModel(http, "mock-gpt")
            streamed, _ = await collect(model)
            whole = await model.answer(ASK, CompletionParams())
        finally:
            await http.close()
    assert whole == streamed and whole.endswith(" tok4")
