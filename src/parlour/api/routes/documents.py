"""The Knowledge API's documents: create or update by text or file (indexed in the
background), list, get, delete, indexing status of a batch, and a document's segments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from parlour.api.deps import DatasetKey, JsonBody, json_doc, path_uuid, validate
from parlour.api.forms import field, multipart, multipart_doc, the_file
from parlour.api.schemas.datasets import (
    DocumentCreated,
    DocumentDetail,
    DocumentPage,
    IndexingStatusList,
    SegmentPage,
    TextDocumentBody,
    TextUpdateBody,
)
from parlour.api.schemas.media import NO_CONTENT
from parlour.api.schemas.responses import ok
from parlour.errors import (
    DatasetNotFound,
    DocumentNotFound,
    FilenameNotExists,
    FileTooLarge,
    InvalidParam,
)

router = APIRouter(tags=["knowledge"])
BASE = "/datasets/{dataset_id}"
F = TypeVar("F", bound=Callable[..., Any])

FILE_FIELDS = {
    "file": {"type": "string", "format": "binary"},
    "data": {"type": "string", "description": "JSON: indexing_technique, process_rule …"},
}
FILE_DOC = multipart_doc(FILE_FIELDS, ["file"])
FILE_UPDATE_DOC = multipart_doc(FILE_FIELDS, [])  # a new file, or only a new process_rule


def form_settings(form: FormData) -> dict[str, Any]:
    """The ``data`` field of a document upload: a JSON object (or nothing)."""
    settings = field(form, "data")
    if not settings:
        return {}
    try:
        parsed = orjson.loads(settings)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidParam("data must be a JSON object")
    return parsed


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    if not upload.filename:
        raise FilenameNotExists()
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge()
    return data


def post_with_alias(path: str, openapi_extra: dict[str, Any]) -> Callable[[F], F]:
    """A document-creating POST at Dify's dashed path, and at the underscored alias Dify also
    serves (left out of the OpenAPI document)."""

    def register(endpoint: F) -> F:
        common: dict[str, Any] = {
            "openapi_extra": openapi_extra,
            "response_model": None,
            "responses": ok(DocumentCreated),
        }
        router.post(path.replace("-", "_"), include_in_schema=False, **common)(endpoint)
        return router.post(path, **common)(endpoint)

    return register


@post_with_alias(BASE + "/document/create-by-text", json_doc(TextDocumentBody))
async def create_by_text(
    dataset_id: str, request: Request, key: DatasetKey, body: JsonBody
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    req = validate(TextDocumentBody, body)
    out: dict[str, Any] = await request.app.state.datasets.docs.add_text(
        key, kb_id, req.name.strip() or req.name, req.text, req.process_rule
    )
    return out


@post_with_alias(BASE + "/document/create-by-file", FILE_DOC)
async def create_by_file(dataset_id: str, request: Request, key: DatasetKey) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    limit = request.app.state.settings.upload_file_size_limit * 1024 * 1024
    async with multipart(request, limit, FileTooLarge()) as form:
        upload = the_file(form)
        settings = form_settings(form)
        data = await read_upload(upload, limit)
    out: dict[str, Any] = await request.app.state.datasets.docs.add_file(
        key, kb_id, upload.filename, data, settings.get("process_rule")
    )
    return out


@post_with_alias(BASE + "/documents/{document_id}/update-by-text", json_doc(TextUpdateBody))
async def update_by_text(
    dataset_id: str, document_id: str, request: Request, key: DatasetKey, body: JsonBody
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    doc_id = path_uuid(document_id, DocumentNotFound)
    req = validate(TextUpdateBody, body)
    name = (req.name.strip() or req.name) if req.name else None
    content = ("text", req.text.encode("utf-8")) if req.text else None
    out: dict[str, Any] = await request.app.state.datasets.docs.update_document(
        key, kb_id, doc_id, name, content, req.process_rule
    )
    return out


@post_with_alias(BASE + "/documents/{document_id}/update-by-file", FILE_UPDATE_DOC)
async def update_by_file(
    dataset_id: str, document_id: str, request: Request, key: DatasetKey
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    doc_id = path_uuid(document_id, DocumentNotFound)
    limit = request.app.state.settings.upload_file_size_limit * 1024 * 1024
    name: str | None = None
    content: tuple[str, bytes] | None = None
    async with multipart(request, limit, FileTooLarge()) as form:
        settings = form_settings(form)
        if isinstance(form.get("file"), UploadFile):
            upload = the_file(form)
            name, content = upload.filename, ("upload_file", await read_upload(upload, limit))
    out: dict[str, Any] = await request.app.state.datasets.docs.update_document(
        key, kb_id, doc_id, name, content, settings.get("process_rule")
    )
    return out


@router.get(BASE + "/documents", response_model=None, responses=ok(DocumentPage))
async def list_documents(
    dataset_id: str,
    request: Request,
    key: DatasetKey,
    page: str | None = None,
    limit: str | None = None,
    keyword: str = "",
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    out: dict[str, Any] = await request.app.state.datasets.docs.documents(
        key, kb_id, page, limit, keyword
    )
    return out


@router.get(BASE + "/documents/{document_id}", response_model=None, responses=ok(DocumentDetail))
async def get_document(
    dataset_id: str, document_id: str, request: Request, key: DatasetKey, metadata: str = "all"
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    doc_id = path_uuid(document_id, DocumentNotFound)
    out: dict[str, Any] = await request.app.state.datasets.docs.document(
        key, kb_id, doc_id, metadata
    )
    return out


@router.delete(
    BASE + "/documents/{document_id}", response_model=None, status_code=204, responses=NO_CONTENT
)
async def delete_document(
    dataset_id: str, document_id: str, request: Request, key: DatasetKey
) -> Response:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    doc_id = path_uuid(document_id, DocumentNotFound)
    await request.app.state.datasets.docs.delete_document(key, kb_id, doc_id)
    return Response(status_code=204)


@router.get(
    BASE + "/documents/{batch}/indexing-status",
    response_model=None,
    responses=ok(IndexingStatusList),
)
async def indexing_status(
    dataset_id: str, batch: str, request: Request, key: DatasetKey
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    out: dict[str, Any] = await request.app.state.datasets.docs.indexing_status(key, kb_id, batch)
    return out


@router.get(
    BASE + "/documents/{document_id}/segments", response_model=None, responses=ok(SegmentPage)
)
async def list_segments(
    dataset_id: str,
    document_id: str,
    request: Request,
    key: DatasetKey,
    page: str | None = None,
    limit: str | None = None,
    keyword: str = "",
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    doc_id = path_uuid(document_id, DocumentNotFound)
    args = {
        "page": page,
        "limit": limit,
        "keyword": keyword,
        "status": request.query_params.getlist("status"),
    }
    out: dict[str, Any] = await request.app.state.datasets.docs.segments(key, kb_id, doc_id, args)
    return out
