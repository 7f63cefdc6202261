"""POST /chat-messages and POST /chat-messages/{task_id}/stop."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from parlour.api.deps import (
    CurrentApp,
    JsonBody,
    json_body,
    json_doc,
    user_of,
    validate,
)
from parlour.api.schemas.chat import ChatRequest, StopRequest
from parlour.api.schemas.responses import ERRORS, ChatCompletion, Result, ok
from parlour.api.sse import EventStreamResponse, collect
from parlour.errors import InvalidParam, NotChatApp
from parlour.services.apps import CHAT_MODES, AppContext
from parlour.services.chat import ChatCommand

router = APIRouter(tags=["chat"])


def _chat_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ChatRequest.model_json_schema()}},
        }
    }


# Before OpenAPI 3.2 the schema of an event stream describes one event: `data` holds a JSON
# event object (message, message_end, error …); `event: ping` frames keep the line alive.
SSE_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}
CHAT_RESPONSES: dict[int | str, Any] = {
    200: {
        "model": ChatCompletion,
        "description": "Blocking: the answer; streaming: `data: {json}` events",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    },
    **ERRORS,
}


@router.post(
    "/chat-messages", openapi_extra=_chat_body(), response_model=None, responses=CHAT_RESPONSES
)
async def send_chat_message(request: Request) -> Response:
    # the hot path: called directly rather than through FastAPI's dependency resolution
    state = request.app.state
    cmd, run = await state.chat.start_keyed(
        state.keys, request.headers.get("authorization"), lambda: json_body(request), _command
    )
    if cmd.response_mode == "blocking":
        payload = await collect(run)
        return Response(orjson.dumps(payload), media_type="application/json; charset=utf-8")
    return EventStreamResponse(run, state.settings.ping_interval)


def _command(app: AppContext, body: dict[str, Any]) -> ChatCommand:
    user = user_of(body.get("user"), required=True)
    if app.mode not in CHAT_MODES:
        raise NotChatApp()
    req = validate(ChatRequest, body)
    if not req.query:
        raise InvalidParam("query is required")
    return ChatCommand(
        query=req.query,
        user=str(user),
        inputs=req.inputs or {},
        conversation_id=req.conversation_id,
        auto_generate_name=req.auto_generate_name,
        files=req.files,
        response_mode=req.response_mode or "streaming",
    )


@router.post(
    "/chat-messages/{task_id}/stop",
    openapi_extra=json_doc(StopRequest),
    response_model=None,
    responses=ok(Result),
)
async def stop_chat_message(
    task_id: str, request: Request, app: CurrentApp, body: JsonBody
) -> dict[str, str]:
    req = validate(StopRequest, body)
    user = user_of(req.user, required=True)
    if app.mode not in CHAT_MODES:
        raise NotChatApp()
    state = request.app.state
    end_user_id = await state.end_users.resolve(app.id, user)
    await state.tasks.stop(task_id, end_user_id)
    return {"result": "success"}
