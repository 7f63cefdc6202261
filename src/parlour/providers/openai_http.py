"""OpenAI-compatible streaming over a lean HTTP/1.1 client (``http1``).

The same wire protocol as ``openai_compat`` (the official SDK), without the SDK's per-request
parameter transformation and response wrappers, nor a general-purpose HTTP client's
per-request and per-read machinery: measured, those cost more CPU than the rest of a streamed
request. Errors map to the same Dify codes. Selected with ``PARLOUR_OPENAI_CLIENT=http`` (the
default; ``aiohttp``, its former name, still selects it) or ``sdk``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import orjson

from parlour.errors import (
    CompletionRequestError,
    ModelNotSupported,
    ProviderError,
    ProviderNotInitialize,
    ProviderQuotaExceeded,
)
from parlour.providers.base import ChatMessage, Chunk, CompletionParams
from parlour.providers.http1 import BodyCut, ConnectionFailed, Http1Pool, InvalidHeader
from parlour.providers.openai_compat import request_body, sse_chunks
from parlour.providers.tokens import count_tokens


class OpenAIHttpClient:
    """One pool of kept-alive connections per (base URL, key)."""

    def __init__(self, base_url: str, api_key: str, timeout: float, connect_timeout: float):
        base = base_url.rstrip("/")
        self.target = (urlsplit(base).path or "") + "/chat/completions"
        self.headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key.strip():  # a key read from a file often ends with a line break
            self.headers["Authorization"] = f"Bearer {api_key.strip()}"
        # a whole (non-streamed) answer's limit; a stream has none here: the chat service
        # bounds the wait for its first token, each next one, and the whole
        self.timeout = timeout
        self.pool = Http1Pool(base, connect_timeout)

    async def close(self) -> None:
        self.pool.close()


class OpenAIHttpModel:
    def __init__(self, client: OpenAIHttpClient, model: str, context_window: int = 8192):
        self.client = client
        self.model = model
        self.name = f"openai:{model}"
        self.context_window = context_window

    def count_tokens(self, text: str) -> int:
        return count_tokens(text)

    async def stream(
        self, messages: list[ChatMessage], params: CompletionParams
    ) -> AsyncIterator[Chunk]:
        body = orjson.dumps(request_body(self.model, messages, params))
        client = self.client
        try:
            async with client.pool.post(client.target, client.headers, body) as response:
                if response.status >= 400:
                    raise status_error(response.status, await response.read())
                async for chunk in sse_chunks(response.iter_any()):
                    yield chunk
        except TimeoutError:
            raise CompletionRequestError("Request timed out.") from None
        except BodyCut as exc:
            raise CompletionRequestError("The model's answer was cut off.") from exc
        except ConnectionFailed as exc:
            raise CompletionRequestError("Connection Error") from exc
        except InvalidHeader as exc:
            raise CompletionRequestError(f"Bad Request Error: {exc}") from exc

    async def answer(self, messages: list[ChatMessage], params: CompletionParams) -> str:
        """The whole answer in one non-streamed response (titles, suggestions)."""
        body = request_body(self.model, messages, params)
        body["stream"] = False
        body.pop("stream_options", None)
        client = self.client
        try:
            async with asyncio.timeout(client.timeout):
                async with client.pool.post(
                    client.target, client.headers, orjson.dumps(body)
                ) as response:
                    if response.status >= 400:
                        raise status_error(response.status, await response.read())
                    data = orjson.loads(await response.read())
        except TimeoutError:
            raise CompletionRequestError("Request timed out.") from None
        except (BodyCut, ConnectionFailed) as exc:
            raise CompletionRequestError("Connection Error") from exc
        except InvalidHeader as exc:
            raise CompletionRequestError(f"Bad Request Error: {exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise CompletionRequestError("Malformed response from the model") from exc
        choices = data.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")


def status_error(status: int, raw: bytes) -> ProviderError:
    """An endpoint's error response (its status and body) as Dify's provider error."""
    detail: Any = raw.decode("utf-8", "replace")[:500]
    code = None
    try:
        err = orjson.loads(raw).get("error")
        if isinstance(err, dict):
            detail, code = err.get("message") or detail, err.get("code")
        elif err:
            detail = str(err)
    except (orjson.JSONDecodeError, AttributeError):
        pass
    if status == 401:
        return CompletionRequestError("Incorrect API key provided")
    if status == 429:
        if code == "insufficient_quota":
            return ProviderQuotaExceeded()
        return CompletionRequestError(f"Rate Limit Error: {detail}")
    if status == 404:
        return ModelNotSupported(f"Model not found: {detail}")
    if status == 403:
        return ProviderNotInitialize(str(detail))
    if status < 500:
        return CompletionRequestError(f"Bad Request Error: {detail}")
    return CompletionRequestError(f"Server Unavailable Error: {detail}")
