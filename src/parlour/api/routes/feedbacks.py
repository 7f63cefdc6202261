"""POST /messages/{id}/feedbacks and GET /app/feedbacks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from parlour.api.deps import CurrentApp, JsonBody, json_doc, path_uuid, user_of, validate
from parlour.api.schemas.conversations import FeedbackRequest
from parlour.api.schemas.responses import FeedbackList, Result, ok
from parlour.errors import MessageNotExists

router = APIRouter(tags=["feedbacks"])


@router.post(
    "/messages/{message_id}/feedbacks",
    openapi_extra=json_doc(FeedbackRequest),
    response_model=None,
    responses=ok(Result),
)
async def message_feedback(
    message_id: str,
    request: Request,
    app: CurrentApp,
    body: JsonBody,
) -> dict[str, str]:
    req = validate(FeedbackRequest, body)
    who = str(user_of(req.user, required=True))
    mid = path_uuid(message_id, MessageNotExists)
    await request.app.state.messages.feedback(app, who, mid, req.rating, req.content)
    return {"result": "success"}


@router.get("/app/feedbacks", response_model=None, responses=ok(FeedbackList))
async def app_feedbacks(
    request: Request,
    app: CurrentApp,
    page: int = Query(1, ge=1, le=1_000_000_000),
    limit: int = Query(20, ge=1, le=101),
) -> dict[str, Any]:
    result: dict[str, Any] = await request.app.state.messages.app_feedbacks(app, page, limit)
    return result
