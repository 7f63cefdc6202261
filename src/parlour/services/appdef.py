"""An app's definition as one document: import (Dify DSL or parlour's own), export, update.

Dify DSL: YAML with ``kind: app``, ``app:`` (name, mode, description, icon …) and
``model_config:`` — chat and agent-chat apps. parlour's own format: ``kind: parlour-app``,
``app:`` (name, description, mode) and ``config:`` (an AppConfig). Every field is kept; the
ones parlour cannot honour yet are listed as warnings, never silently dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from parlour.appconfig import AppConfig
from parlour.errors import InvalidParam, NotFound
from parlour.services import variables
from parlour.services.apps import CHAT_MODES, find_app
from parlour.services.inputs import FORM_TYPES
from parlour.services.knowledge import find_kb
from parlour.storage.models import App, utcnow

PARLOUR_KIND = "parlour-app"
DIFY_VERSION = "0.3.0"
OPENAI_COMPATIBLE = ("openai", "openai_api_compatible")
HONOURED_PARAMS = ("temperature", "top_p", "max_tokens", "stop")
KNOWN_KEYS = set(AppConfig.model_fields) | {
    "chat_prompt_config", "completion_prompt_config", "dataset_query_variable",
    "external_data_tools", "pre_prompt", "prompt_type",
}
SITE_KEYS = ("icon", "icon_background", "icon_type", "use_icon_as_answer_icon")
PARLOUR_ONLY = ("site", "tags", "author_name", "allow_inputs_update", "conversation_variables")
# (config key, what parlour does not do with it yet) for feature toggles
UNHONOURED_FEATURES = (
    ("sensitive_word_avoidance", "content moderation is not applied"),
    ("annotation_reply", "annotation replies are not served"),
    ("speech_to_text", "speech to text is not served"),
    ("text_to_speech", "text to speech is not served"),
    ("more_like_this", "more-like-this is a completion-app feature; ignored"),
)


@dataclass
class AppDefinition:
    name: str
    description: str
    mode: str
    config: AppConfig
    warnings: list[str] = field(default_factory=list)


def load(text: str) -> AppDefinition:
    """Parse a Dify DSL or parlour document (YAML or JSON); InvalidParam when unusable."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidParam(f"not a YAML or JSON document: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidParam("the document must be a mapping")
    if doc.get("kind") == PARLOUR_KIND or "config" in doc:
        return _from_parlour(doc)
    if doc.get("kind", "app") == "app" and "app" in doc:
        return _from_dify(doc)
    raise InvalidParam("unknown document: expected a Dify DSL (kind: app) or kind: parlour-app")


def _app_part(doc: dict[str, Any]) -> tuple[str, str, str]:
    app = doc.get("app") or {}
    if not isinstance(app, dict) or not app.get("name"):
        raise InvalidParam("app.name is required")
    mode = str(app.get("mode") or "chat")
    if mode not in ("chat", "agent-chat"):
        raise InvalidParam(
            f"app mode {mode!r} cannot be imported: parlour serves chat and agent-chat apps "
            "(advanced-chat workflows, completion and workflow apps are not supported)"
        )
    return str(app["name"]), str(app.get("description") or ""), mode


def _validate(raw: dict[str, Any]) -> AppConfig:
    try:
        config = AppConfig.model_validate(raw)
        variables.check_declarations(config.conversation_variables)
    except (ValidationError, ValueError) as exc:
        raise InvalidParam(f"invalid app config: {exc}") from None
    return config


def _from_parlour(doc: dict[str, Any]) -> AppDefinition:
    name, description, mode = _app_part(doc)
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise InvalidParam("config must be a mapping")
    config = _validate(raw)
    return AppDefinition(name, description, mode, config, warnings_for(config, mode))


def _from_dify(doc: dict[str, Any]) -> AppDefinition:
    name, description, mode = _app_part(doc)
    raw = dict(doc.get("model_config") or {})
    if not raw:
        raise InvalidParam("model_config is missing: only chat and agent-chat apps carry it")
    notes: list[str] = []
    raw["model"] = _dify_model(dict(raw.get("model") or {}), notes)
    for key in ("opening_statement", "pre_prompt", "dataset_query_variable"):
        if raw.get(key) is None:
            raw.pop(key, None)  # Dify writes null for "unset"
    app = doc["app"]
    site = {k: app[k] for k in SITE_KEYS if k in app}
    if site:
        raw["site"] = {"title": name, "description": description, **site}
    if doc.get("dependencies"):
        notes.append("dependencies (Dify plugins) are not installed by parlour")
    config = _validate(raw)
    return AppDefinition(name, description, mode, config, notes + warnings_for(config, mode))


def _dify_model(model: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    vendor = str(model.get("provider") or "openai").rstrip("/").split("/")[-1]
    model["dify_provider"] = model.get("provider")
    if vendor not in OPENAI_COMPATIBLE:
        notes.append(
            f"model provider {vendor!r} is called through parlour's OpenAI-compatible client: "
            "set model.base_url (and model.api_key) to an OpenAI-compatible endpoint for it"
        )
    model["provider"] = "openai"
    return model


def warnings_for(config: AppConfig, mode: str) -> list[str]:
    """Everything in the config that parlour keeps but does not act on (yet)."""
    raw = config.model_dump(mode="json")
    out = [f"{key}: {what}" for key, what in UNHONOURED_FEATURES
           if (raw.get(key) or {}).get("enabled")]
    if _file_upload_enabled(raw.get("file_upload") or {}):
        out.append("file_upload: files sent with messages are not read")
    agent = raw.get("agent_mode") or {}
    if (mode == "agent-chat" or agent.get("enabled")) and agent.get("tools"):
        out.append("agent_mode.tools: agent tools are not run; the model answers directly")
    for key, what in (
        ("external_data_tools", "external data tools are not called"),
        ("dataset_query_variable", "not used"),
    ):
        if raw.get(key):
            out.append(f"{key}: {what}")
    if raw.get("prompt_type") == "advanced":
        out.append("prompt_type advanced: chat_prompt_config is not used; pre_prompt is")
    return out + _model_and_form_warnings(config, raw)


def _model_and_form_warnings(config: AppConfig, raw: dict[str, Any]) -> list[str]:
    out = []
    if raw["model"].get("mode", "chat") != "chat":
        out.append(f"model.mode {raw['model']['mode']!r}: parlour calls models in chat mode")
    for param in config.model.completion_params.model_extra or {}:
        if param not in HONOURED_PARAMS:
            out.append(f"model.completion_params.{param}: not sent to the model")
    for item in raw.get("user_input_form") or []:
        kind = next(iter(item))
        if kind not in FORM_TYPES:
            out.append(f"user_input_form {kind!r}: not validated or filled")
    out += [f"{key}: kept but not used by parlour" for key in raw if key not in KNOWN_KEYS]
    return out


def _file_upload_enabled(cfg: dict[str, Any]) -> bool:
    image = cfg.get("image") or {}
    return bool(cfg.get("enabled") or (isinstance(image, dict) and image.get("enabled")))


# --- export ------------------------------------------------------------------------------


def export(app: App, fmt: str = "parlour") -> str:
    """The app as a document (the model's api_key is never written out)."""
    config = AppConfig.model_validate(app.config).model_dump(mode="json")
    if config["model"].get("api_key"):
        config["model"]["api_key"] = ""
    if fmt == "parlour":
        doc: dict[str, Any] = {
            "kind": PARLOUR_KIND, "version": 1,
            "app": {"name": app.name, "description": app.description, "mode": app.mode},
            "config": config,
        }
    elif fmt == "dify":
        doc = _to_dify(app, config)
    else:
        raise InvalidParam("format must be parlour or dify")
    return str(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


def _to_dify(app: App, config: dict[str, Any]) -> dict[str, Any]:
    site = config.get("site") or {}
    model = dict(config["model"])
    model["provider"] = model.pop("dify_provider", None) or model["provider"]
    for key in ("base_url", "api_key", "context_window"):
        model.pop(key, None)
    model_config = {k: v for k, v in config.items() if k not in PARLOUR_ONLY}
    model_config["model"] = model
    return {
        "app": {
            "name": app.name, "mode": app.mode, "description": app.description,
            **{k: site[k] for k in SITE_KEYS if k in site},
        },
        "kind": "app",
        "version": DIFY_VERSION,
        "model_config": model_config,
    }


# --- storage ---------------------------------------------------------------------------


async def attach_datasets(session: AsyncSession, definition: AppDefinition) -> list[str]:
    """Point ``dataset_configs`` at local knowledge bases: an id that is a local base's stays;
    otherwise the entry's ``name`` (or an id that is a base's name) is looked up and the id
    rewritten. Returns (and adds to the definition) a warning per base that is missing."""
    configs = definition.config.dataset_configs or {}
    entries = (configs.get("datasets") or {}).get("datasets") or []
    notes: list[str] = []
    for item in entries:
        dataset = item.get("dataset", item) if isinstance(item, dict) else None
        if not isinstance(dataset, dict):
            continue
        refs = [str(r) for r in (dataset.get("id"), dataset.get("name")) if r]
        for ref in refs:
            try:
                dataset["id"] = (await find_kb(session, ref)).id
                break
            except NotFound:
                continue
        else:
            named = " / ".join(repr(r) for r in refs) or "(no id)"
            notes.append(
                f"dataset_configs: knowledge base {named} does not exist here; create it "
                "(parlour kb create NAME) and update the app, or the app answers without it"
            )
    definition.warnings += notes
    return notes


async def create_from(session: AsyncSession, definition: AppDefinition) -> App:
    app = App(
        id=str(uuid.uuid4()), name=definition.name, description=definition.description,
        mode=definition.mode, config=definition.config.model_dump(mode="json"),
    )
    session.add(app)
    await session.flush()
    return app


async def update_from(session: AsyncSession, ref: str, definition: AppDefinition) -> App:
    """Replace an app's definition; running servers pick it up on the next request (their
    config cache is keyed by ``updated_at``, which moves forward here)."""
    app = await find_app(session, ref)
    if definition.mode not in CHAT_MODES:
        raise InvalidParam(f"mode must be one of {', '.join(CHAT_MODES)}")
    app.name, app.description, app.mode = definition.name, definition.description, definition.mode
    app.config = definition.config.model_dump(mode="json")
    app.updated_at = max(utcnow(), app.updated_at + timedelta(microseconds=1))
    await session.flush()
    return app
