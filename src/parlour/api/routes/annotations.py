"""Annotations: GET/POST /apps/annotations, PUT/DELETE /apps/annotations/{id}, and the
annotation-reply enable/disable jobs with their status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from parlour.api.deps import CurrentApp, JsonBody, json_doc, path_uuid, validate
from parlour.api.schemas.media import (
    NO_CONTENT,
    AnnotationBody,
    AnnotationOut,
    AnnotationPage,
    AnnotationReplyBody,
    Job,
    JobStatus,
    created,
)
from parlour.api.schemas.responses import ok
from parlour.errors import AnnotationNotFound

router = APIRouter(tags=["annotations"])


@router.get("/apps/annotations", response_model=None, responses=ok(AnnotationPage))
async def list_annotations(
    request: Request, app: CurrentApp, page: str | None = None, limit: str | None = None,
    keyword: str = "",
) -> dict[str, Any]:
    result: dict[str, Any] = await request.app.state.annotations.page(app, page, limit, keyword)
    return result


@router.post("/apps/annotations", openapi_extra=json_doc(AnnotationBody), response_model=None,
             responses=created(AnnotationOut))
async def create_annotation(request: Request, app: CurrentApp, body: JsonBody) -> Response:
    req = validate(AnnotationBody, body)
    row = await request.app.state.annotations.create(app, req.question, req.answer)
    return JSONResponse(row, status_code=201)


@router.put("/apps/annotations/{annotation_id}", openapi_extra=json_doc(AnnotationBody),
            response_model=None, responses=ok(AnnotationOut))
async def update_annotation(
    annotation_id: str, request: Request, app: CurrentApp, body: JsonBody
) -> dict[str, Any]:
    aid = path_uuid(annotation_id, AnnotationNotFound)
    req = validate(AnnotationBody, body)
    row: dict[str, Any] = await request.app.state.annotations.update(
        app, aid, req.question, req.answer
    )
    return row


@router.delete("/apps/annotations/{annotation_id}", response_model=None, status_code=204,
               responses=NO_CONTENT)
async def delete_annotation(annotation_id: str, request: Request, app: CurrentApp) -> Response:
    aid = path_uuid(annotation_id, AnnotationNotFound)
    await request.app.state.annotations.delete(app, aid)
    return Response(status_code=204)


@router.post("/apps/annotation-reply/{action}", openapi_extra=json_doc(AnnotationReplyBody),
             response_model=None, responses=ok(Job))
async def annotation_reply(
    action: str, request: Request, app: CurrentApp, body: JsonBody
) -> dict[str, str]:
    service = request.app.state.annotations
    threshold, model = 0.0, ""
    if action == "enable":  # disable needs no settings (Dify demands them anyway)
        req = validate(AnnotationReplyBody, body)
        threshold = req.score_threshold
        model = service.model_for(req.embedding_provider_name, req.embedding_model_name)
    job: dict[str, str] = await service.start_job(app, action, threshold, model)
    return job


@router.get("/apps/annotation-reply/{action}/status/{job_id}", response_model=None,
            responses=ok(JobStatus))
async def annotation_reply_status(
    action: str, job_id: str, request: Request, app: CurrentApp
) -> dict[str, str]:
    status: dict[str, str] = await request.app.state.annotations.job_status(app, action, job_id)
    return status
