"""Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, LM Studio …).

Uses the official SDK (its aiohttp transport, whose cost stays flat with many open streams)
for the request, auth, base URL and error types, and reads the SSE lines itself with orjson:
building a pydantic object per token would cost more CPU than the rest of the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson

from parlour.errors import (
    CompletionRequestError,
    ModelNotSupported,
    ProviderError,
    ProviderNotInitialize,
    ProviderQuotaExceeded,
)
from parlour.providers.base import (
    ChatMessage,
    Chunk,
    CompletionParams,
    Finish,
    TextDelta,
    Usage,
    as_dicts,
    sampling,
)
from parlour.providers.tokens import count_tokens


def make_client(
    base_url: str | None, api_key: str | None, timeout: float, connect_timeout: float = 10.0
) -> openai.AsyncOpenAI:
    limits = openai.Timeout(timeout, connect=connect_timeout)
    return openai.AsyncOpenAI(
        base_url=base_url or None,
        api_key=api_key or "not-needed",
        timeout=limits,
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(timeout=limits),
    )


class OpenAIChatModel:
    def __init__(self, client: openai.AsyncOpenAI, model: str, context_window: int = 8192):
        self.client = client
        self.model = model
        self.name = f"openai:{model}"
        self.context_window = context_window

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)

    async def stream(
        self, messages: list[ChatMessage], params: CompletionParams
    ) -> AsyncIterator[Chunk]:
        body = request_body(self.model, messages, params)
        try:
            async with self.client.chat.completions.with_streaming_response.create(
                **body
            ) as response:
                async for chunk in sse_chunks(response.iter_bytes()):
                    yield chunk
        except openai.OpenAIError as exc:
            raise map_error(exc) from exc


def request_body(
    model: str, messages: list[ChatMessage], params: CompletionParams
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": as_dicts(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
        **sampling(params),
    }
    if params.max_tokens:
        body["max_tokens"] = params.max_tokens
    return body


async def sse_chunks(data: AsyncIterator[bytes]) -> AsyncIterator[Chunk]:
    """Chunks from the bytes of an OpenAI-style SSE body, as they arrive; raises when the
    body ends before the model said it finished."""
    rest, finished = b"", False
    async for block in data:
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        for chunk in _parse_lines(lines):
            finished = finished or type(chunk) is Finish
            yield chunk
    for chunk in _parse_lines([rest]):
        finished = finished or type(chunk) is Finish
        yield chunk
    if not finished:
        raise CompletionRequestError("The model's answer was cut off.")


def _parse_lines(lines: list[bytes]) -> list[Chunk]:
    """The chunks of the lines that arrived together; their text deltas become one delta
    (a burst of tokens goes out as one event, not one event per token)."""
    out: list[Chunk] = []
    text: list[str] = []
    for line in lines:
        for chunk in _parse_line(line.decode("utf-8")):
            if type(chunk) is TextDelta:
                text.append(chunk.text)
            else:
                out.append(chunk)
    if text:
        out.insert(0, TextDelta("".join(text)))
    return out


def _parse_line(line: str) -> list[Chunk]:
    if not line.startswith("data:"):
        return []
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return []
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise CompletionRequestError(f"Malformed chunk from the model: {data[:200]}") from None
    if not isinstance(obj, dict):
        raise CompletionRequestError(f"Malformed chunk from the model: {data[:200]}")
    if obj.get("error"):
        err = obj["error"]
        raise CompletionRequestError(str(err.get("message") if isinstance(err, dict) else err))
    out: list[Chunk] = []
    for choice in obj.get("choices") or ():
        text = (choice.get("delta") or {}).get("content")
        if text:
            out.append(TextDelta(text))
        if choice.get("finish_reason"):
            out.append(Finish(choice["finish_reason"]))
    usage = obj.get("usage")
    if usage:
        out.append(Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0))
    return out


def map_error(exc: openai.OpenAIError) -> ProviderError:
    """Vendor errors → Dify's provider codes."""
    if isinstance(exc, openai.APITimeoutError):
        # the aiohttp transport reports a refused connection as a connect timeout
        if "cannot connect" in str(exc.__cause__).lower():
            return CompletionRequestError("Connection Error")
        return CompletionRequestError("Request timed out.")
    if isinstance(exc, openai.APIConnectionError):
        return CompletionRequestError("Connection Error")
    if isinstance(exc, openai.AuthenticationError):
        return CompletionRequestError("Incorrect API key provided")
    if isinstance(exc, openai.RateLimitError):
        if getattr(exc, "code", None) == "insufficient_quota":
            return ProviderQuotaExceeded()
        return CompletionRequestError(f"Rate Limit Error: {_detail(exc)}")
    if isinstance(exc, openai.NotFoundError):
        return ModelNotSupported(f"Model not found: {_detail(exc)}")
    if isinstance(exc, openai.PermissionDeniedError):
        return ProviderNotInitialize(_detail(exc))
    if isinstance(exc, openai.BadRequestError):
        return CompletionRequestError(f"Bad Request Error: {_detail(exc)}")
    if isinstance(exc, openai.APIStatusError):
        return CompletionRequestError(f"Server Unavailable Error: {_detail(exc)}")
    return CompletionRequestError(str(exc) or type(exc).__name__)


def _detail(exc: openai.OpenAIError) -> str:
    return str(getattr(exc, "message", None) or exc)
