"""GET /v1/info, /v1/parameters, /v1/meta, /v1/site, /v1/end-users/{id}."""

from __future__ import annotations

from tests.api.helpers import auth, end_user_id, second_app, set_config
from tests.conftest import Server

PARAMETER_KEYS = {
    "opening_statement", "suggested_questions", "suggested_questions_after_answer",
    "speech_to_text", "text_to_speech", "retriever_resource", "annotation_reply",
    "more_like_this", "user_input_form", "sensitive_word_avoidance", "file_upload",
    "system_parameters",
}


async def get(server: Server, path: str, key: str | None = None, **params: object):  # type: ignore[no-untyped-def]
    return await server.client.get(f"/v1{path}", params=params, headers=server.auth(key))


async def test_info(server: Server) -> None:
    r = await get(server, "/info")
    assert r.json() == {
        "name": "test", "description": "", "tags": [], "mode": "chat", "author_name": None,
    }


async def test_parameters_defaults_then_configured(server: Server) -> None:
    body = (await get(server, "/parameters", user="alice")).json()
    assert set(body) == PARAMETER_KEYS
    assert body["opening_statement"] == "" and body["suggested_questions"] == []
    assert body["suggested_questions_after_answer"] == {"enabled": False}
    assert body["retriever_resource"] == {"enabled": True}
    assert body["annotation_reply"] == {"enabled": False}
    assert body["sensitive_word_avoidance"] == {"enabled": False, "type": "", "config": {}}
    assert body["file_upload"]["image"]["number_limits"] == 3
    assert body["system_parameters"] == {
        "image_file_size_limit": 10, "video_file_size_limit": 100, "audio_file_size_limit": 50,
        "file_size_limit": 15, "workflow_file_upload_limit": 10,
    }
    form = [{"select": {"label": "Tone", "variable": "tone", "required": True,
                        "options": ["a", "b"], "default": ""}}]
    await set_config(
        server, opening_statement="Hello!", suggested_questions=["Why?"], user_input_form=form,
        text_to_speech={"enabled": True, "voice": "alloy", "autoPlay": "disabled"},
    )
    body = (await get(server, "/parameters")).json()
    assert body["opening_statement"] == "Hello!" and body["suggested_questions"] == ["Why?"]
    assert body["user_input_form"] == form
    assert body["text_to_speech"] == {"enabled": True, "voice": "alloy", "autoPlay": "disabled"}


async def test_meta_and_site(server: Server) -> None:
    assert (await get(server, "/meta")).json() == {"tool_icons": {}}
    await set_config(server, agent_mode={"enabled": True, "tools": [
        {"tool_name": "clock", "enabled": True},
        {"tool_name": "web", "enabled": True, "icon": "https://x/icon.svg"},
        {"tool_name": "off", "enabled": False},
    ]}, site={"title": "My Bot", "icon": "🦜", "copyright": "ACME", "unknown": 1})
    assert (await get(server, "/meta")).json() == {"tool_icons": {
        "clock": {"background": "#252525", "content": "😁"}, "web": "https://x/icon.svg",
    }}
    site = (await get(server, "/site")).json()
    assert site["title"] == "My Bot" and site["icon"] == "🦜" and site["copyright"] == "ACME"
    assert site["icon_type"] == "emoji" and site["icon_url"] is None and "unknown" not in site
    assert site["chat_color_theme_inverted"] is False


async def test_end_users(server: Server) -> None:
    await server.chat("hi", user="alice")
    uid = await end_user_id(server, "alice")
    body = (await get(server, f"/end-users/{uid}")).json()
    assert body["id"] == uid and body["session_id"] == "alice"
    assert body["external_user_id"] == "alice" and body["type"] == "service-api"
    assert body["is_anonymous"] is False and body["app_id"] == server.app_id
    missing = {"code": "end_user_not_found", "message": "End user not found.", "status": 404}
    r = await get(server, "/end-users/6b3b1c43-49b5-4a0a-8f6b-8d8f0f0b8f00")
    assert r.status_code == 404 and r.json() == missing
    assert (await get(server, "/end-users/nope")).json() == missing
    _, other_key = await second_app(server)
    r = await server.client.get(f"/v1/end-users/{uid}", headers=auth(other_key))
    assert r.status_code == 404
    default = await end_user_id(server, "DEFAULT-USER")
    assert (await get(server, f"/end-users/{default}")).json()["is_anonymous"] is True
