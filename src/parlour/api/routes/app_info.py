"""GET /info, /parameters, /meta, /site and /end-users/{id}: the app describes itself."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from parlour.api.deps import CurrentApp, path_uuid
from parlour.api.schemas.responses import EndUserOut, Info, Meta, Parameters, Site, ok
from parlour.errors import EndUserNotFound
from parlour.services import app_info
from parlour.services.end_users import end_user_dict

router = APIRouter(tags=["app"])


@router.get("/info", response_model=None, responses=ok(Info))
async def info(app: CurrentApp) -> dict[str, Any]:
    return app_info.info(app)


@router.get("/parameters", response_model=None, responses=ok(Parameters))
async def parameters(
    app: CurrentApp, user: str | None = None
) -> dict[str, Any]:
    return app_info.parameters(app)


@router.get("/meta", response_model=None, responses=ok(Meta))
async def meta(app: CurrentApp) -> dict[str, Any]:
    return app_info.meta(app)


@router.get("/site", response_model=None, responses=ok(Site))
async def site(app: CurrentApp) -> dict[str, Any]:
    return app_info.site(app)


@router.get(
    "/end-users/{end_user_id}", response_model=None, responses=ok(EndUserOut)
)
async def end_user(
    end_user_id: str, request: Request, app: CurrentApp
) -> dict[str, Any]:
    uid = path_uuid(end_user_id, EndUserNotFound)
    return await end_user_dict(request.app.state.sessions, app.id, uid)
