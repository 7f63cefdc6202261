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
from parlour.services.apps import (
    CHAT_MODES,
    AppContext,
    StaleKey,
    authenticate,
    authenticate_hinted,
)
from parlour.services.chat import ChatCommand, ChatRun

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
    header = request.headers.get("authorization")
    app = await authenticate_hinted(state.hot, state.app_cache, state.key_hints, header)
    try:
        body = await json_body(request)
        user = body.get("user")
        if app.proof is not None and (
            body.get("files") or not (isinstance(user, str) and state.end_users.known(app.id, user))
        ):
            # a new end user is a write: make it only for a key read now (files: the user is
            # resolved after they are, and may no longer be remembered by then)
            app = await authenticate(state.hot, state.app_cache, header, state.key_hints)
        req, run = await _start(state, app, body)
    except StaleKey:  # nothing was written: start again from the key's row as it is now
        app = await authenticate(state.hot, state.app_cache, header, state.key_hints)
        req, run = await _start(state, app, body, counted=True)
    except Exception:
        if app.proof is not None:  # a key that no longer holds answers 401/403 first
            await authenticate(state.hot, state.app_cache, header, state.key_hints)
        raise
    if req.response_mode == "blocking":
        payload = await collect(run)
        return Response(orjson.dumps(payload), media_type="application/json; charset=utf-8")
    return EventStreamResponse(run, state.settings.ping_interval)


async def _start(
    state: Any, app: AppContext, body: dict[str, Any], counted: bool = False
) -> tuple[ChatRequest, ChatRun]:
    user = user_of(body.get("user"), required=True)
    if app.mode not in CHAT_MODES:
        raise NotChatApp()
    req = validate(ChatRequest, body)
    if not req.query:
        raise InvalidParam("query is required")
    cmd = ChatCommand(
        query=req.query,
        user=str(user),
        inputs=req.inputs or {},
        conversation_id=req.conversation_id,
        auto_generate_name=req.auto_generate_name,
        files=req.files,
        counted=counted,
    )
    return req, await state.chat.start(app, cmd)


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
