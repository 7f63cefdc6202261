"""POST /audio-to-text and POST /text-to-audio against a scripted OpenAI-compatible speech
endpoint (aiohttp on a free port), and without one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from parlour.providers.fake import FakeChatModel
from tests.api.helpers import set_config
from tests.conftest import Database, Server, free_port, run_server

MP3 = b"ID3\x03" + b"\xff\xfb" * 5000


@asynccontextmanager
async def speech_upstream(seen: list[dict[str, Any]]) -> AsyncIterator[str]:
    async def transcriptions(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        f: Any = form["file"]
        seen.append({"model": form["model"], "filename": f.filename,
                     "type": f.content_type, "bytes": f.file.read(),
                     "auth": request.headers.get("Authorization")})
        if form["model"] == "broken":
            return web.json_response({"error": {"message": "no such model"}}, status=400)
        return web.json_response({"text": "hello from audio"})

    async def speech(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(body)
        if body["voice"] == "nobody":
            return web.json_response({"error": {"message": "bad voice"}}, status=400)
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await response.prepare(request)
        for i in range(0, len(MP3), 4096):
            await response.write(MP3[i:i + 4096])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/speech", speech)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def audio(name: str = "a.mp3", mime: str = "audio/mp3", data: bytes = MP3) -> dict[str, Any]:
    return {"file": (name, data, mime)}


async def test_without_a_speech_endpoint_it_is_provider_not_initialize(server: Server) -> None:
    await set_config(server, speech_to_text={"enabled": True},
                     text_to_speech={"enabled": True, "voice": "alloy"})
    h, c = server.auth(), server.client
    r = await c.post("/v1/audio-to-text", files=audio(), data={"user": "u"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "provider_not_initialize")
    r = await c.post("/v1/text-to-audio", json={"text": "hi", "user": "u"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "provider_not_initialize")


async def test_audio_to_text_checks(server: Server) -> None:
    h, c = server.auth(), server.client
    r = await c.post("/v1/audio-to-text", data={"user": "u"}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "bad_request_key_error")
    r = await c.post("/v1/audio-to-text", files=audio(), headers=h)
    assert r.json() == {"code": "invalid_param", "message": "Speech to text is not enabled",
                        "status": 400}
    await set_config(server, speech_to_text={"enabled": True})
    for mime in ("audio/mpeg", "audio/webm", "audio/Mp3", "text/plain"):
        r = await c.post("/v1/audio-to-text", files=audio(mime=mime), headers=h)
        assert (r.status_code, r.json()["code"]) == (415, "unsupported_audio_type"), mime
    big = b"\x00" * (30 * 1024 * 1024 + 1)
    r = await c.post("/v1/audio-to-text", files=audio(data=big), headers=h)
    assert r.json() == {"code": "audio_too_large", "message": "Audio size larger than 30 mb",
                        "status": 413}


async def test_speech_through_an_openai_compatible_endpoint(
    database: Database, tmp_path: Path, fake_model: FakeChatModel
) -> None:
    seen: list[dict[str, Any]] = []
    async with speech_upstream(seen) as base, run_server(
        database, tmp_path, fake_model, speech_base_url=base, speech_api_key="sk-speech",
        speech_to_text_model="whisper-x",
    ) as server:
        await set_config(server, speech_to_text={"enabled": True})
        h, c = server.auth(), server.client
        r = await c.post("/v1/audio-to-text", files=audio("v.WAV", "audio/WAV", b"RIFF"),
                         data={"user": "u"}, headers=h)
        assert r.status_code == 200 and r.json() == {"text": "hello from audio"}
        assert seen[-1] == {"model": "whisper-x", "filename": "v.WAV", "type": "audio/WAV",
                            "bytes": b"RIFF", "auth": "Bearer sk-speech"}
        # text to speech: an explicit voice skips the app's TTS switch (as Dify)
        r = await c.post("/v1/text-to-audio", json={"text": "  say this ", "voice": "echo"},
                         headers=h)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
        assert r.content == MP3
        assert seen[-1] == {"model": "tts-1", "voice": "echo", "input": "say this",
                            "response_format": "mp3"}
        r = await c.post("/v1/text-to-audio", json={"text": "x"}, headers=h)
        assert r.json()["message"] == "TTS is not enabled"
        await set_config(server, speech_to_text={"enabled": True},
                         text_to_speech={"enabled": True, "voice": "nova"})
        r = await c.post("/v1/text-to-audio", json={"user": "u"}, headers=h)
        assert r.json()["message"] == "Text is required"
        answer = (await server.chat("speak me")).json()
        r = await c.post("/v1/text-to-audio", json={"message_id": answer["message_id"]},
                         headers=h)
        assert r.content == MP3 and seen[-1]["voice"] == "nova"
        assert seen[-1]["input"] == answer["answer"].strip()
        for mid in ("nope", "6b3b1c43-49b5-4a0a-8f6b-8d8f0f0b8f00"):
            r = await c.post("/v1/text-to-audio", json={"message_id": mid}, headers=h)
            assert r.status_code == 200 and r.json() is None
        r = await c.post("/v1/text-to-audio", json={"text": "x", "voice": "nobody"}, headers=h)
        assert (r.status_code, r.json()["code"]) == (400, "completion_request_error")
        server.state.speech.settings.speech_to_text_model = "broken"
        r = await c.post("/v1/audio-to-text", files=audio(), headers=h)
        assert (r.status_code, r.json()["code"]) == (400, "completion_request_error")
        assert "no such model" in r.json()["message"]
