"""POST /audio-to-text (multipart) and POST /text-to-audio (JSON; MP3 streamed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from parlour.api.deps import CurrentApp, JsonBody, json_doc, user_of, validate
from parlour.api.forms import audio_file, field, multipart, multipart_doc
from parlour.api.schemas.media import BINARY, TextToAudioBody, Transcript
from parlour.api.schemas.responses import ERRORS, ok
from parlour.errors import AudioTooLarge
from parlour.services.speech import MAX_AUDIO

router = APIRouter(tags=["audio"])

AUDIO_DOC = multipart_doc(
    {"file": {"type": "string", "format": "binary"}, "user": {"type": "string"}}, ["file"]
)
TTS_RESPONSES: dict[int | str, Any] = {
    200: {
        "description": "MP3 bytes; `null` when the message has no answer to speak",
        "content": {"audio/mpeg": BINARY, "application/json": {"schema": {"nullable": True}}},
    },
    **ERRORS,
}


@router.post("/audio-to-text", openapi_extra=AUDIO_DOC, response_model=None,
             responses=ok(Transcript))
async def audio_to_text(request: Request, app: CurrentApp) -> dict[str, str]:
    async with multipart(request, MAX_AUDIO, AudioTooLarge()) as form:
        upload = audio_file(form)
        user_of(field(form, "user"), required=False)
        result: dict[str, str] = await request.app.state.speech.transcribe(
            app, upload.filename or "audio", upload.content_type or "", upload.file,
            upload.size or 0,
        )
    return result


@router.post("/text-to-audio", openapi_extra=json_doc(TextToAudioBody), response_model=None,
             responses=TTS_RESPONSES)
async def text_to_audio(request: Request, app: CurrentApp, body: JsonBody) -> Response:
    req = validate(TextToAudioBody, body)
    user_of(req.user, required=False)
    audio = await request.app.state.speech.synthesize(app, req.message_id, req.text, req.voice)
    if audio is None:
        return Response(b"null", media_type="application/json")
    return StreamingResponse(audio, media_type="audio/mpeg")
