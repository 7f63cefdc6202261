"""Request plumbing: the app behind the bearer key, JSON bodies, ``user`` and ids."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from parlour.api.errors import describe
from parlour.errors import (
    BadRequest,
    InvalidParam,
    NotChatApp,
    NotFound,
    ParlourError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from parlour.services.apps import CHAT_MODES, AppContext, authenticate
from parlour.services.dataset_keys import DatasetScope

M = TypeVar("M", bound=BaseModel)
MAX_JSON_DEPTH = 64


async def current_app(request: Request) -> AppContext:
    state = request.app.state
    return await authenticate(state.hot, state.app_cache, request.headers.get("authorization"))


async def current_dataset_key(request: Request) -> DatasetScope:
    """The Knowledge API's ``dataset-…`` key (app keys do not open it)."""
    scope: DatasetScope = await request.app.state.datasets.authenticate(
        request.headers.get("authorization")
    )
    return scope


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object in the body; 415 / 413 / 400 in Dify's words otherwise."""
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge()
    raw = await read_limited(request, limit)
    ctype = request.headers.get("content-type", "")
    if "json" not in ctype.lower():
        if not raw.strip():
            return {}  # nothing to misread: let the endpoint say what is missing
        raise UnsupportedMediaType()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Invalid JSON payload: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidParam("The JSON body must be an object.")
    checked: dict[str, Any] = body
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH or b"\\u0000" in raw:
        checked = sanitize(body)
    return checked


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, but 413 as soon as it grows past ``limit`` (a chunked upload declares no
    length, so counting is the only guard against reading gigabytes into memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def sanitize(value: Any, depth: int = 0) -> Any:
    """NUL characters dropped from every key and string (PostgreSQL text and JSON cannot hold
    them); more than ``MAX_JSON_DEPTH`` levels of nesting is a 400 (the stores' JSON encoders
    stop at a few hundred, and no Dify client nests that deep)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if depth >= MAX_JSON_DEPTH:
        raise InvalidParam(f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep.")
    if isinstance(value, dict):
        return {k.replace("\x00", ""): sanitize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v, depth + 1) for v in value]
    return value


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidParam(describe(exc.errors())) from exc


def user_of(value: Any, *, required: bool) -> str | None:
    """Dify's ``user``: str() of the value; empty, null, 0 and false count as missing."""
    if value in (None, "", 0, False):
        if required:
            raise InvalidParam("Arg user must be provided.")
        return None
    text = str(value).replace("\x00", "")
    if not text:
        if required:
            raise InvalidParam("Arg user must be provided.")
        return None
    if len(text) > 255:
        raise InvalidParam("Arg user must be at most 255 characters.")
    return text


def path_uuid(value: str, error: type[ParlourError] = NotFound) -> str:
    """Path ids are UUIDs; anything else is a 404, as an unknown route would be."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise error() from None


CurrentApp = Annotated[AppContext, Depends(current_app)]
DatasetKey = Annotated[DatasetScope, Depends(current_dataset_key)]
JsonBody = Annotated[dict[str, Any], Depends(json_body)]


async def strict_json_body(request: Request) -> dict[str, Any]:
    """As ``json_body``, but a JSON content type is required even with no body (Dify's
    DELETE /conversations/{id} answers 415 without one)."""
    if "json" not in request.headers.get("content-type", "").lower():
        raise UnsupportedMediaType()
    return await json_body(request)


def query_uuid(value: str | None, name: str) -> str | None:
    """An optional id in the query string: empty means absent, anything else must be a UUID."""
    if value is None or not value.strip():
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise InvalidParam(f"{name} must be a valid UUID") from None


def require_chat(app: AppContext) -> None:
    if app.mode not in CHAT_MODES:
        raise NotChatApp()


def json_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that is read by hand (``json_body``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
