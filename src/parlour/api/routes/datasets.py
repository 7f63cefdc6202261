"""The Knowledge API's bases: POST/GET /datasets, GET/PATCH/DELETE /datasets/{id}, and
POST /datasets/{id}/retrieve (alias hit-testing). Opened by ``dataset-…`` keys only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from parlour.api.deps import DatasetKey, JsonBody, json_doc, path_uuid, validate
from parlour.api.schemas.datasets import (
    Dataset,
    DatasetBody,
    DatasetPage,
    DatasetUpdateBody,
    Retrieval,
    RetrieveBody,
)
from parlour.api.schemas.media import NO_CONTENT
from parlour.api.schemas.responses import ok
from parlour.errors import DatasetNotFound

router = APIRouter(tags=["knowledge"])


@router.post(
    "/datasets", openapi_extra=json_doc(DatasetBody), response_model=None, responses=ok(Dataset)
)
async def create_dataset(request: Request, key: DatasetKey, body: JsonBody) -> dict[str, Any]:
    req = validate(DatasetBody, body)
    row: dict[str, Any] = await request.app.state.datasets.create(
        key, req.model_dump(exclude_none=True)
    )
    return row


@router.get("/datasets", response_model=None, responses=ok(DatasetPage))
async def list_datasets(
    request: Request,
    key: DatasetKey,
    page: str | None = None,
    limit: str | None = None,
    keyword: str = "",
) -> dict[str, Any]:
    result: dict[str, Any] = await request.app.state.datasets.page(key, page, limit, keyword)
    return result


@router.get("/datasets/{dataset_id}", response_model=None, responses=ok(Dataset))
async def get_dataset(dataset_id: str, request: Request, key: DatasetKey) -> dict[str, Any]:
    row: dict[str, Any] = await request.app.state.datasets.get(
        key, path_uuid(dataset_id, DatasetNotFound)
    )
    return row


@router.patch(
    "/datasets/{dataset_id}",
    openapi_extra=json_doc(DatasetUpdateBody),
    response_model=None,
    responses=ok(Dataset),
)
async def update_dataset(
    dataset_id: str, request: Request, key: DatasetKey, body: JsonBody
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    req = validate(DatasetUpdateBody, body)
    row: dict[str, Any] = await request.app.state.datasets.update(
        key, kb_id, req.model_dump(exclude_unset=True, exclude_none=True)
    )
    return row


@router.delete("/datasets/{dataset_id}", response_model=None, status_code=204, responses=NO_CONTENT)
async def delete_dataset(dataset_id: str, request: Request, key: DatasetKey) -> Response:
    await request.app.state.datasets.delete(key, path_uuid(dataset_id, DatasetNotFound))
    return Response(status_code=204)


@router.post(
    "/datasets/{dataset_id}/retrieve",
    openapi_extra=json_doc(RetrieveBody),
    response_model=None,
    responses=ok(Retrieval),
)
@router.post(
    "/datasets/{dataset_id}/hit-testing",
    openapi_extra=json_doc(RetrieveBody),
    response_model=None,
    responses=ok(Retrieval),
    include_in_schema=False,
)
async def retrieve(
    dataset_id: str, request: Request, key: DatasetKey, body: JsonBody
) -> dict[str, Any]:
    kb_id = path_uuid(dataset_id, DatasetNotFound)
    req = validate(RetrieveBody, body)
    wanted = req.retrieval_model.model_dump(exclude_none=True) if req.retrieval_model else None
    result: dict[str, Any] = await request.app.state.datasets.retrieve(
        key, kb_id, req.query, wanted
    )
    return result
