"""POST /audio-to-text and POST /text-to-audio: Dify's checks, then the speech endpoint.

Without a configured endpoint both answer ``provider_not_initialize`` (as Dify does with no
default speech model); there is no embedded speech model yet.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from parlour.config import Settings
from parlour.errors import (
    AudioTooLarge,
    InvalidParam,
    ProviderNotInitialize,
    UnsupportedAudioType,
)
from parlour.providers.openai_speech import OpenAISpeech
from parlour.services.apps import AppContext
from parlour.storage.models import Message

AUDIO_EXTENSIONS = ("mp3", "m4a", "wav", "amr", "mpga")
AUDIO_TYPES = {f"audio/{e}" for e in AUDIO_EXTENSIONS} | {
    f"audio/{e.upper()}" for e in AUDIO_EXTENSIONS
}
MAX_AUDIO = 30 * 1024 * 1024


class Speech:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]):
        self.settings = settings
        self.sessions = sessions
        self._client: OpenAISpeech | None = None

    def client(self, what: str) -> OpenAISpeech:
        s = self.settings
        if not s.speech_base_url:
            raise ProviderNotInitialize(
                f"Default model not found for {what}: set PARLOUR_SPEECH_BASE_URL to an "
                "OpenAI-compatible endpoint."
            )
        if self._client is None:
            self._client = OpenAISpeech(s.speech_base_url, s.speech_api_key, s.speech_timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def transcribe(
        self, app: AppContext, filename: str, mime_type: str, source: BinaryIO, size: int
    ) -> dict[str, str]:
        if not app.config.speech_to_text.enabled:
            raise InvalidParam("Speech to text is not enabled")
        if mime_type not in AUDIO_TYPES:
            raise UnsupportedAudioType()
        if size > MAX_AUDIO:
            raise AudioTooLarge()
        client = self.client("speech2text")
        data = await asyncio.to_thread(source.read, MAX_AUDIO + 1)
        text = await client.transcribe(
            self.settings.speech_to_text_model, filename, data, mime_type
        )
        return {"text": text}

    async def synthesize(
        self, app: AppContext, message_id: str | None, text: str | None, voice: str | None
    ) -> AsyncIterator[bytes] | None:
        """MP3 bytes, or ``None`` (Dify's ``null`` body) for a message with nothing to say."""
        if message_id:
            text = await self._answer_of(app, message_id)
            if not text:
                return None
        elif text is None:
            raise InvalidParam("Text is required")
        if not voice:
            tts = app.config.text_to_speech
            if not tts.enabled:
                raise InvalidParam("TTS is not enabled")
            voice = str(getattr(tts, "voice", "") or self.settings.text_to_speech_voice)
            if not voice:
                raise InvalidParam("Sorry, no voice available.")
        client = self.client("tts")
        return await client.speak(self.settings.text_to_speech_model, voice, text.strip())

    async def _answer_of(self, app: AppContext, message_id: str) -> str | None:
        """The answer of a message of this app (Dify looks in every app)."""
        try:
            mid = str(uuid.UUID(message_id))
        except ValueError:
            return None
        async with self.sessions() as session:
            answer = await session.scalar(
                select(Message.answer).where(Message.id == mid, Message.app_id == app.id)
            )
        return answer or None
