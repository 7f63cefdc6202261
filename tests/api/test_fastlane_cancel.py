"""A chat request cancelled before its response began: by the server (past its grace
period) it gets a JSON 503; a CancelledError that is no cancel of the request is a failure."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from parlour.api import errors
from parlour.api.fastlane import ParlourAPI


def app_with(handler: object) -> ParlourAPI:
    app = ParlourAPI()
    app.cors_headers = {}
    errors.install(app)
    app.serve_directly("POST", "/v1/chat-messages", handler)  # type: ignore[arg-type]
    return app


async def test_a_request_the_server_cancels_gets_a_json_503() -> None:
    async def waits_for_a_first_token(request: Request) -> Response:
        asyncio.current_task().cancel()  # type: ignore[union-attr]  # as uvicorn does
        await asyncio.sleep(1)
        raise AssertionError("not reached")

    transport = httpx.ASGITransport(app=app_with(waits_for_a_first_token))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/v1/chat-messages", json={})
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == "service_unavailable" and "shutting down" in body["message"]


async def test_a_cancelled_error_that_is_no_cancel_is_not_a_shutdown() -> None:
    async def fails(request: Request) -> Response:
        raise asyncio.CancelledError  # e.g. a future cancelled elsewhere, raised on

    transport = httpx.ASGITransport(app=app_with(fails))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(asyncio.CancelledError):
            await client.post("/v1/chat-messages", json={})
