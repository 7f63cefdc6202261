"""Bodies of the conversation and message endpoints, as clients send them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class RenameRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    auto_generate: bool = False
    user: Any = None


class VariableUpdateRequest(BaseModel):
    """``value`` is required (any JSON, null included)."""

    model_config = ConfigDict(extra="ignore")

    value: Any
    user: Any = None


class UserBody(BaseModel):
    user: Any = None


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rating: Literal["like", "dislike"] | None = None
    content: str | None = None
    user: Any = None
