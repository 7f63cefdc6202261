"""The one place errors become HTTP: every failure is ``{"code","message","status"}`` JSON."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from parlour.errors import (
    BadRequest,
    DatabaseUnavailable,
    InternalError,
    InvalidParam,
    MethodNotAllowed,
    NotFound,
    ParlourError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from parlour.services.health import database_error_types, database_unavailable

log = logging.getLogger("parlour.api")

_BY_STATUS: dict[int, type[ParlourError]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def error_response(exc: ParlourError) -> Response:
    return Response(
        orjson.dumps(exc.body()),
        status_code=exc.status,
        media_type="application/json",
        headers=exc.headers or None,
    )


async def _parlour(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ParlourError)
    return error_response(exc)


async def _http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    cls = _BY_STATUS.get(exc.status_code)
    if cls is None:
        err: ParlourError = InternalError()
        return error_response(err)
    return error_response(cls())


async def _validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("loc", ("",))[0] == "path" for e in errors):
        return error_response(NotFound())
    return error_response(InvalidParam(describe(errors)))


async def _storage(_request: Request, exc: Exception) -> Response:
    """A database that is down or restarting is a quick 503, not a 500 with a traceback."""
    if database_unavailable(exc):
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return error_response(DatabaseUnavailable())
    log.exception("unhandled error", exc_info=exc)
    return error_response(InternalError())


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(InternalError())


async def response_for(request: Request, exc: Exception) -> Response:
    """What the installed handlers answer for ``exc`` (for routes served outside them)."""
    if isinstance(exc, ParlourError):
        return error_response(exc)
    if isinstance(exc, StarletteHTTPException):
        return await _http(request, exc)
    if isinstance(exc, database_error_types()):
        return await _storage(request, exc)
    return await _unexpected(request, exc)


def describe(errors: object) -> str:
    """Pydantic errors as one readable line per field: ``field: message``."""
    lines = []
    for e in errors if isinstance(errors, list) else []:
        parts = list(e.get("loc", ()))
        if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
            parts = parts[1:]
        loc = ".".join(str(p) for p in parts)
        lines.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg")))
    return "; ".join(lines) or "Invalid request."


def install(app: FastAPI) -> None:
    app.add_exception_handler(ParlourError, _parlour)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    for cls in database_error_types():
        app.add_exception_handler(cls, _storage)
    app.add_exception_handler(Exception, _unexpected)
