"""POST /chat-messages and its stop endpoint, as clients send them."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: StrictStr
    inputs: dict[str, Any] | None = Field(default_factory=dict)
    response_mode: Literal["streaming", "blocking"] | None = "streaming"
    user: Any = None
    conversation_id: str | None = None
    files: list[dict[str, Any]] | None = None
    auto_generate_name: bool = True
    retriever_from: str | None = None

    @field_validator("query")
    @classmethod
    def _strip_nul(cls, v: str) -> str:
        return v.replace("\x00", "")

    @field_validator("conversation_id")
    @classmethod
    def _conversation_uuid(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            return str(uuid.UUID(v.strip()))
        except ValueError:
            raise ValueError("conversation_id must be a valid UUID") from None


class StopRequest(BaseModel):
    user: Any = None
