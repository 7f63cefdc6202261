"""Multipart bodies (uploads, audio) read with Starlette's parser: parts over 1 MB spool to a
temporary file, so an upload is never held in memory whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from parlour.errors import BadRequestKeyError, NoFileUploaded, TooManyFiles

MULTIPART_SLACK = 1024 * 1024  # the form fields and part headers around the file


@asynccontextmanager
async def multipart(request: Request, max_bytes: int, too_large: Exception) -> AsyncIterator[
    FormData
]:
    """The form of the request; ``too_large`` when it declares more than ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + MULTIPART_SLACK:
        raise too_large
    async with request.form(max_files=8, max_fields=32) as form:
        yield form


def the_file(form: FormData, name: str = "file") -> UploadFile:
    """Dify's upload checks: a part named ``file``; one distinct file field name."""
    files = {key for key, value in form.multi_items() if isinstance(value, UploadFile)}
    upload = form.get(name)
    if not isinstance(upload, UploadFile):
        raise NoFileUploaded()
    if len(files) > 1:
        raise TooManyFiles()
    return upload


def audio_file(form: FormData) -> UploadFile:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequestKeyError()
    return upload


def field(form: FormData, name: str) -> Any:
    value = form.get(name)
    return None if isinstance(value, UploadFile) else value


def multipart_doc(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """``openapi_extra`` documenting a multipart body read by hand."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": properties, "required": required}
                }
            },
        }
    }
