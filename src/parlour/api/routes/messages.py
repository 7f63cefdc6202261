"""GET /messages (history) and GET /messages/{id}/suggested."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from parlour.api.deps import CurrentApp, path_uuid, query_uuid, require_chat, user_of
from parlour.api.schemas.responses import MessagePage, Suggested, ok
from parlour.errors import MessageNotExists

router = APIRouter(tags=["messages"])


@router.get("/messages", response_model=None, responses=ok(MessagePage))
async def list_messages(
    request: Request,
    conversation_id: str,
    app: CurrentApp,
    user: str | None = None,
    first_id: str | None = None,
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    who = user_of(user, required=False)
    require_chat(app)
    cid = query_uuid(conversation_id, "conversation_id")
    before = query_uuid(first_id, "first_id")
    result: dict[str, Any] = await request.app.state.messages.history(app, who, cid, before, limit)
    return result


@router.get(
    "/messages/{message_id}/suggested", response_model=None, responses=ok(Suggested)
)
async def suggested_questions(
    message_id: str,
    request: Request,
    app: CurrentApp,
    user: str | None = None,
) -> dict[str, Any]:
    who = str(user_of(user, required=True))
    require_chat(app)
    mid = path_uuid(message_id, MessageNotExists)
    data = await request.app.state.messages.suggested(app, who, mid)
    return {"result": "success", "data": data}
