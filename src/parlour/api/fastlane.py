"""POST /v1/chat-messages without the framework's layers.

Every request through FastAPI passes about ten ASGI layers (error and exception middleware,
body limit, CORS, routing, the exit stack …) before its handler runs, and several of them wrap
``send``. For the one endpoint that carries nearly all the traffic, that is a large share of
a request's CPU. ``ParlourAPI`` serves it directly, so a stream's frames go straight to the
server's ``send``: the same handler, the same error bodies
(``response_for``), the same CORS headers; every other request, including the endpoint's
OPTIONS pre-flight, goes through FastAPI as before. The route stays registered, so the
OpenAPI document still describes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from parlour.api.errors import response_for
from parlour.api.sse import SHUTDOWN
from parlour.errors import ServiceUnavailable

Handler = Callable[[Request], Awaitable[Response]]


class ParlourAPI(FastAPI):
    fast_routes: dict[tuple[str, str], Handler]
    cors_headers: dict[str, str]

    def serve_directly(self, method: str, path: str, handler: Handler) -> None:
        if not hasattr(self, "fast_routes"):
            self.fast_routes = {}
        self.fast_routes[(method, path)] = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            routes = getattr(self, "fast_routes", None)
            handler = routes and routes.get((scope["method"], scope["path"]))
            if handler:
                await self._direct(handler, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _direct(self, handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        request = Request(scope, receive)
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling() == 0:
                raise  # not a cancel of this request: a failure, not a shutdown
            # nothing but the server cancels a request before its response (a client that
            # leaves does not): it is past its grace period, and says so
            task.uncancel()
            response = await response_for(request, ServiceUnavailable(SHUTDOWN))
        except Exception as exc:
            response = await response_for(request, exc)
        if self.cors_headers and any(k == b"origin" for k, _ in scope["headers"]):
            response.headers.update(self.cors_headers)
        await response(scope, receive, send)
