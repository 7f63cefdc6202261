"""Speech over any OpenAI-compatible endpoint: ``/audio/transcriptions`` (speech to text) and
``/audio/speech`` (text to speech, MP3 streamed as it is made). Errors map to Dify's codes as
the chat client's do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson

from parlour.errors import CompletionRequestError
from parlour.providers.openai_http import status_error

CHUNK = 64 * 1024


class OpenAISpeech:
    def __init__(self, base_url: str, api_key: str, timeout: float = 120.0):
        self.base = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = aiohttp.ClientTimeout(total=None, connect=10.0, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def transcribe(self, model: str, filename: str, data: bytes, mime_type: str) -> str:
        form = aiohttp.FormData()
        form.add_field("model", model)
        form.add_field("file", data, filename=filename or "audio", content_type=mime_type)
        try:
            async with self.session().post(
                f"{self.base}/audio/transcriptions", data=form, headers=self.headers
            ) as response:
                if response.status >= 400:
                    raise status_error(response.status, await response.read())
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CompletionRequestError("Connection Error") from exc
        try:
            return str(orjson.loads(raw).get("text") or "")
        except (orjson.JSONDecodeError, AttributeError):
            return raw.decode("utf-8", "replace").strip()  # response_format text

    async def speak(self, model: str, voice: str, text: str) -> AsyncIterator[bytes]:
        """Starts the synthesis (so a failure is raised here, before any byte is sent) and
        returns the MP3 bytes as they arrive."""
        body = {"model": model, "voice": voice, "input": text, "response_format": "mp3"}
        try:
            response = await self.session().post(
                f"{self.base}/audio/speech", json=body, headers=self.headers
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CompletionRequestError("Connection Error") from exc
        if response.status >= 400:
            try:
                raise status_error(response.status, await response.read())
            finally:
                response.release()
        return _chunks(response)


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_chunked(CHUNK):
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CompletionRequestError("Connection Error") from exc
    finally:
        response.release()
