"""Wire models of responses, for the published OpenAPI document only.

Handlers return plain dicts built by the services; these models describe them (routes use
``responses=`` rather than ``response_model=``, so nothing is re-validated or filtered on the
way out). The fuzz tests check every response against these schemas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every failure, whatever the status: Dify's error triple."""

    code: str
    message: str
    status: int


ERRORS: dict[int | str, dict[str, Any]] = {
    "default": {"model": ErrorBody, "description": "Error: `{code, message, status}`"},
}


def ok(model: type[BaseModel] | None, description: str = "Success") -> dict[int | str, Any]:
    """``responses=`` of a route: its 200 body and the error body for everything else."""
    if model is None:
        return {**ERRORS}
    return {200: {"model": model, "description": description}, **ERRORS}


class Result(BaseModel):
    result: Literal["success"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    total_price: str
    currency: str
    latency: float


class ChatMetadata(BaseModel):
    annotation_reply: dict[str, Any] | None = None
    retriever_resources: list[dict[str, Any]] = []
    usage: Usage


class ChatCompletion(BaseModel):
    """The blocking answer of POST /chat-messages (streaming sends ``text/event-stream``)."""

    event: Literal["message"]
    task_id: str
    id: str
    message_id: str
    conversation_id: str
    mode: str
    answer: str
    metadata: ChatMetadata
    created_at: int


class ConversationOut(BaseModel):
    id: str
    name: str
    inputs: dict[str, Any]
    status: str
    introduction: str
    created_at: int
    updated_at: int


class ConversationPage(BaseModel):
    limit: int
    has_more: bool
    data: list[ConversationOut]


class Feedback(BaseModel):
    rating: Literal["like", "dislike"]


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    parent_message_id: str | None
    inputs: dict[str, Any]
    query: str
    answer: str
    message_files: list[dict[str, Any]]
    feedback: Feedback | None
    retriever_resources: list[dict[str, Any]]
    agent_thoughts: list[dict[str, Any]]
    created_at: int
    status: Literal["normal", "error"]
    error: str | None


class MessagePage(BaseModel):
    limit: int
    has_more: bool
    data: list[MessageOut]


class Suggested(BaseModel):
    result: Literal["success"]
    data: list[str]


class VariableOut(BaseModel):
    id: str
    name: str
    value_type: str
    value: Any
    description: str
    created_at: int
    updated_at: int


class VariablePage(BaseModel):
    limit: int
    has_more: bool
    data: list[VariableOut]


class FeedbackOut(BaseModel):
    id: str
    app_id: str
    conversation_id: str
    message_id: str
    rating: Literal["like", "dislike"]
    content: str | None
    from_source: str
    from_end_user_id: str | None
    from_account_id: str | None
    created_at: str
    updated_at: str


class FeedbackList(BaseModel):
    data: list[FeedbackOut]


class EndUserOut(BaseModel):
    id: str
    tenant_id: str | None
    app_id: str
    type: str
    external_user_id: str
    name: str | None
    is_anonymous: bool
    session_id: str
    created_at: str
    updated_at: str


class Info(BaseModel):
    name: str
    description: str
    tags: list[str]
    mode: str
    author_name: str | None


class Parameters(BaseModel):
    """Feature objects pass through with their extra keys."""

    opening_statement: str
    suggested_questions: list[str]
    suggested_questions_after_answer: dict[str, Any]
    speech_to_text: dict[str, Any]
    text_to_speech: dict[str, Any]
    retriever_resource: dict[str, Any]
    annotation_reply: dict[str, Any]
    more_like_this: dict[str, Any]
    user_input_form: list[dict[str, Any]]
    sensitive_word_avoidance: dict[str, Any]
    file_upload: dict[str, Any]
    system_parameters: dict[str, int]


class Meta(BaseModel):
    tool_icons: dict[str, Any]


class Site(BaseModel):
    title: str
    chat_color_theme: str
    chat_color_theme_inverted: bool
    icon_type: str
    icon: str
    icon_background: str
    icon_url: str | None
    description: str
    copyright: str
    privacy_policy: str
    custom_disclaimer: str
    default_language: str
    show_workflow_steps: bool
    use_icon_as_answer_icon: bool


class Welcome(BaseModel):
    welcome: str
    api_version: str
    server_version: str
