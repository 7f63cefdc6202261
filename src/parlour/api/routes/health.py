"""GET /health (no key): for load balancers and orchestrators."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from parlour.services.health import check

router = APIRouter(tags=["health"])


@router.get("/health", response_model=None)
async def health(request: Request) -> Response:
    healthy, report = await check(request.app.state.sessions, request.app.state.redis)
    return Response(
        orjson.dumps(report), status_code=200 if healthy else 503, media_type="application/json"
    )
