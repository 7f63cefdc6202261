"""OpenAI-compatible streaming over a plain aiohttp session.

The same wire protocol as ``openai_compat`` (the official SDK), without the SDK's per-request
parameter transformation and response wrappers: measured, those cost more CPU than the rest
of a streamed request. Errors map to the same Dify codes. Selected with
``PARLOUR_OPENAI_CLIENT=aiohttp`` (the default) or ``sdk``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from parlour.errors import (
    CompletionRequestError,
    ModelNotSupported,
    ProviderError,
    ProviderNotInitialize,
    ProviderQuotaExceeded,
)
from parlour.providers.base import ChatMessage, Chunk, CompletionParams
from parlour.providers.openai_compat import request_body, sse_chunks
from parlour.providers.tokens import count_tokens


class OpenAIHttpClient:
    """One pooled session per (base URL, key); built lazily inside the running loop."""

    def __init__(self, base_url: str, api_key: str, timeout: float, connect_timeout: float):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        # no per-read timer: rescheduling it on every chunk cost CPU per token, and the chat
        # service already bounds the wait for the first token, each next one, and the total
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        # streams have no total timer either: the chat service's watchdog is their total
        self.stream_timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                timeout=self.timeout,
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


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
            async with client.session().post(
                client.url, data=body, headers=client.headers, timeout=client.stream_timeout
            ) as response:
                if response.status >= 400:
                    raise await _status_error(response)
                async for chunk in sse_chunks(response.content.iter_any()):
                    yield chunk
        except TimeoutError:
            raise CompletionRequestError("Request timed out.") from None
        except aiohttp.ClientPayloadError as exc:
            raise CompletionRequestError("The model's answer was cut off.") from exc
        except aiohttp.ClientError as exc:
            raise CompletionRequestError("Connection Error") from exc


    async def answer(self, messages: list[ChatMessage], params: CompletionParams) -> str:
        """The whole answer in one non-streamed response (titles, suggestions)."""
        body = request_body(self.model, messages, params)
        body["stream"] = False
        body.pop("stream_options", None)
        client = self.client
        try:
            async with client.session().post(
                client.url, data=orjson.dumps(body), headers=client.headers
            ) as response:
                if response.status >= 400:
                    raise await _status_error(response)
                data = orjson.loads(await response.read())
        except TimeoutError:
            raise CompletionRequestError("Request timed out.") from None
        except aiohttp.ClientError as exc:
            raise CompletionRequestError("Connection Error") from exc
        except orjson.JSONDecodeError as exc:
            raise CompletionRequestError("Malformed response from the model") from exc
        choices = data.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")


async def _status_error(response: aiohttp.ClientResponse) -> ProviderError:
    raw = await response.read()
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
    status = response.status
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
