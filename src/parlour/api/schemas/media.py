"""Wire models of files, audio and annotations (documentation of what the services return)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from parlour.api.schemas.responses import ERRORS


class UploadedFile(BaseModel):
    id: str
    name: str
    size: int
    extension: str
    mime_type: str
    created_by: str
    created_at: int
    preview_url: str | None
    source_url: str | None
    original_url: str | None
    user_id: str | None
    tenant_id: str | None
    conversation_id: str | None
    file_key: str | None


class Transcript(BaseModel):
    text: str


class AnnotationOut(BaseModel):
    id: str
    question: str
    answer: str
    hit_count: int
    created_at: int


class AnnotationPage(BaseModel):
    data: list[AnnotationOut]
    has_more: bool
    limit: int
    total: int
    page: int


class AnnotationBody(BaseModel):
    question: str
    answer: str


class AnnotationReplyBody(BaseModel):
    score_threshold: float
    embedding_provider_name: str | None = None
    embedding_model_name: str | None = None


class Job(BaseModel):
    job_id: str
    job_status: str


class JobStatus(Job):
    error_msg: str


class TextToAudioBody(BaseModel):
    message_id: str | None = None
    text: str | None = None
    voice: str | None = None
    streaming: bool | None = None
    user: Any = None


BINARY = {"schema": {"type": "string", "format": "binary"}}


def binary(*media_types: str, description: str = "The file's bytes") -> dict[int | str, Any]:
    return {200: {"description": description, "content": {m: BINARY for m in media_types}},
            **ERRORS}


def created(model: type[BaseModel]) -> dict[int | str, Any]:
    return {201: {"model": model, "description": "Created"}, **ERRORS}


NO_CONTENT: dict[int | str, Any] = {204: {"description": "Deleted"}, **ERRORS}
