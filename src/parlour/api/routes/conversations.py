"""GET /conversations, DELETE /conversations/{id}, POST …/name, GET/PUT/PATCH …/variables."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from parlour.api.deps import (
    CurrentApp,
    JsonBody,
    json_doc,
    path_uuid,
    query_uuid,
    require_chat,
    strict_json_body,
    user_of,
    validate,
)
from parlour.api.schemas.conversations import RenameRequest, UserBody, VariableUpdateRequest
from parlour.api.schemas.responses import (
    ConversationOut,
    ConversationPage,
    VariableOut,
    VariablePage,
    ok,
)
from parlour.errors import ConversationNotExists, ConversationVariableNotExists

router = APIRouter(tags=["conversations"])
StrictJsonBody = Annotated[dict[str, Any], Depends(strict_json_body)]
SortBy = Literal["created_at", "-created_at", "updated_at", "-updated_at"]


@router.get("/conversations", response_model=None, responses=ok(ConversationPage))
async def list_conversations(
    request: Request,
    app: CurrentApp,
    user: str | None = None,
    last_id: str | None = None,
    limit: int = Query(20, ge=1, le=100),
    sort_by: SortBy = "-updated_at",
) -> dict[str, Any]:
    who = user_of(user, required=False)
    require_chat(app)
    after = query_uuid(last_id, "last_id")
    service = request.app.state.conversations
    result: dict[str, Any] = await service.page(app, who, after, limit, sort_by)
    return result


@router.delete(
    "/conversations/{conversation_id}",
    status_code=204,
    openapi_extra=json_doc(UserBody),
    responses=ok(None),
)
async def delete_conversation(
    conversation_id: str,
    request: Request,
    app: CurrentApp,
    body: StrictJsonBody,
) -> Response:
    who = user_of(body.get("user"), required=False)
    require_chat(app)
    cid = path_uuid(conversation_id, ConversationNotExists)
    await request.app.state.conversations.delete(app, who, cid)
    return Response(status_code=204)


@router.post(
    "/conversations/{conversation_id}/name",
    openapi_extra=json_doc(RenameRequest),
    response_model=None,
    responses=ok(ConversationOut),
)
async def rename_conversation(
    conversation_id: str,
    request: Request,
    app: CurrentApp,
    body: JsonBody,
) -> dict[str, Any]:
    req = validate(RenameRequest, body)
    who = user_of(req.user, required=False)
    require_chat(app)
    cid = path_uuid(conversation_id, ConversationNotExists)
    service = request.app.state.conversations
    result: dict[str, Any] = await service.rename(app, who, cid, req.name, req.auto_generate)
    return result


@router.get(
    "/conversations/{conversation_id}/variables",
    response_model=None,
    responses=ok(VariablePage),
)
async def list_variables(
    conversation_id: str,
    request: Request,
    app: CurrentApp,
    user: str | None = None,
    last_id: str | None = None,
    limit: int = Query(20, ge=1, le=100),
    variable_name: str | None = None,
) -> dict[str, Any]:
    who = user_of(user, required=False)
    require_chat(app)
    cid = path_uuid(conversation_id, ConversationNotExists)
    after = query_uuid(last_id, "last_id")
    service = request.app.state.conversations
    result: dict[str, Any] = await service.variables(app, who, cid, after, limit, variable_name)
    return result


VARIABLE = "/conversations/{conversation_id}/variables/{variable_id}"


VARIABLE_DOC = json_doc(VariableUpdateRequest)


@router.put(VARIABLE, openapi_extra=VARIABLE_DOC, response_model=None, responses=ok(VariableOut))
@router.patch(
    VARIABLE,
    openapi_extra=VARIABLE_DOC,
    operation_id="patch_variable",
    response_model=None,
    responses=ok(VariableOut),
)
async def update_variable(
    conversation_id: str,
    variable_id: str,
    request: Request,
    app: CurrentApp,
    body: JsonBody,
) -> dict[str, Any]:
    req = validate(VariableUpdateRequest, body)
    who = user_of(req.user, required=False)
    require_chat(app)
    cid = path_uuid(conversation_id, ConversationNotExists)
    vid = path_uuid(variable_id, ConversationVariableNotExists)
    service = request.app.state.conversations
    result: dict[str, Any] = await service.set_variable(app, who, cid, vid, req.value)
    return result
