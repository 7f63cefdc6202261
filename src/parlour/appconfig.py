"""An app's whole configuration: one validated document in the shape of Dify's ``model_config``.

Feature objects (``speech_to_text``, ``file_upload`` …) keep any extra keys they carry, so a
Dify DSL export maps straight in and comes back out unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CompletionParamsConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = Field(default_factory=list)


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    provider: str = "local"
    name: str = "smollm2"
    mode: str = "chat"
    completion_params: CompletionParamsConfig = Field(default_factory=CompletionParamsConfig)
    base_url: str = ""  # OpenAI-compatible endpoint for this app (else the server's setting)
    api_key: str = ""
    context_window: int | None = None

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @classmethod
    def from_spec(cls, spec: str) -> ModelConfig:
        provider, sep, name = spec.partition(":")
        if not sep or not provider or not name:
            raise ValueError(f"model must look like PROVIDER:MODEL, got {spec!r}")
        return cls(provider=provider, name=name)


class Feature(BaseModel):
    model_config = ConfigDict(extra="allow")

    enabled: bool = False


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: ModelConfig = Field(default_factory=ModelConfig)
    prompt_type: Literal["simple", "advanced"] = "simple"
    pre_prompt: str = ""
    opening_statement: str = ""
    suggested_questions: list[str] = Field(default_factory=list)
    suggested_questions_after_answer: Feature = Field(default_factory=Feature)
    speech_to_text: Feature = Field(default_factory=Feature)
    text_to_speech: Feature = Field(default_factory=Feature)
    retriever_resource: Feature = Field(default_factory=lambda: Feature(enabled=True))
    annotation_reply: Feature = Field(default_factory=Feature)
    more_like_this: Feature = Field(default_factory=Feature)
    sensitive_word_avoidance: dict[str, Any] = Field(
        default_factory=lambda: {"enabled": False, "type": "", "config": {}}
    )
    file_upload: dict[str, Any] = Field(
        default_factory=lambda: {
            "image": {
                "enabled": False,
                "number_limits": 3,
                "detail": "high",
                "transfer_methods": ["remote_url", "local_file"],
            }
        }
    )
    user_input_form: list[dict[str, Any]] = Field(default_factory=list)
    agent_mode: dict[str, Any] = Field(default_factory=lambda: {"enabled": False, "tools": []})
    dataset_configs: dict[str, Any] = Field(default_factory=dict)
    conversation_variables: list[dict[str, Any]] = Field(default_factory=list)
    # Let later messages of a conversation update its stored inputs (Dify freezes them).
    allow_inputs_update: bool = False
    # parlour's own: what GET /site and GET /info show (Dify keeps these outside model_config).
    site: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    author_name: str | None = None

    @field_validator("user_input_form")
    @classmethod
    def _single_key_items(cls, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in items:
            if len(item) != 1:
                raise ValueError("each user_input_form item has exactly one control type key")
        return items
