"""What an app tells about itself: /info, /parameters, /meta, /site (no ``user``)."""

from __future__ import annotations

from typing import Any

from parlour.services.apps import AppContext

SYSTEM_PARAMETERS = {
    "image_file_size_limit": 10,
    "video_file_size_limit": 100,
    "audio_file_size_limit": 50,
    "file_size_limit": 15,
    "workflow_file_upload_limit": 10,
}
FEATURES = (
    "suggested_questions_after_answer",
    "speech_to_text",
    "text_to_speech",
    "retriever_resource",
    "annotation_reply",
    "more_like_this",
)
DEFAULT_TOOL_ICON = {"background": "#252525", "content": "😁"}


def info(app: AppContext) -> dict[str, Any]:
    return {
        "name": app.name,
        "description": app.description,
        "tags": list(app.config.tags),
        "mode": app.mode,
        "author_name": app.config.author_name,
    }


def parameters(app: AppContext) -> dict[str, Any]:
    """Every key always present; feature objects pass through with their extra keys."""
    cfg = app.config.model_dump(mode="json")
    out: dict[str, Any] = {
        "opening_statement": cfg["opening_statement"],
        "suggested_questions": cfg["suggested_questions"],
    }
    for name in FEATURES:
        out[name] = cfg[name]
    out["user_input_form"] = cfg["user_input_form"]
    out["sensitive_word_avoidance"] = cfg["sensitive_word_avoidance"]
    out["file_upload"] = cfg["file_upload"]
    out["system_parameters"] = dict(SYSTEM_PARAMETERS)
    return out


def meta(app: AppContext) -> dict[str, Any]:
    """Icons of the app's agent tools (a tool may carry its own ``icon``)."""
    icons: dict[str, Any] = {}
    for tool in app.config.agent_mode.get("tools") or []:
        if isinstance(tool, dict) and tool.get("enabled", True):
            name = tool.get("tool_name") or tool.get("name")
            if name:
                icons[str(name)] = tool.get("icon") or dict(DEFAULT_TOOL_ICON)
    return {"tool_icons": icons}


def site(app: AppContext) -> dict[str, Any]:
    """The web-app settings: defaults, overridden by the app config's ``site``."""
    out: dict[str, Any] = {
        "title": app.name,
        "chat_color_theme": "",
        "chat_color_theme_inverted": False,
        "icon_type": "emoji",
        "icon": "🤖",
        "icon_background": "#FFEAD5",
        "icon_url": None,
        "description": app.description,
        "copyright": "",
        "privacy_policy": "",
        "custom_disclaimer": "",
        "default_language": "en-US",
        "show_workflow_steps": False,
        "use_icon_as_answer_icon": False,
    }
    out.update({k: v for k, v in app.config.site.items() if k in out})
    return out
