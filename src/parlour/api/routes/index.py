"""GET /v1/ (no auth): who is answering."""

from __future__ import annotations

from fastapi import APIRouter

from parlour import __version__
from parlour.api.schemas.responses import Welcome, ok

router = APIRouter(tags=["index"])


@router.get("/", response_model=None, responses=ok(Welcome))
async def index() -> dict[str, str]:
    return {"welcome": "parlour", "api_version": "v1", "server_version": __version__}
