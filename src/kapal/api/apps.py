"""/apps: create, list, info, maintenance, destroy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from kapal.api import serializers
from kapal.api.deps import CtxDep, UserDep
from kapal.services import apps as apps_service
from kapal.services.context import Context
from kapal.services.eco import app_process_tier
from kapal.services.releases import current_release
from kapal.store.models import App, User

router = APIRouter()


class AppCreate(BaseModel):
    name: str | None = None
    region: str | None = None
    stack: str | None = None


class AppUpdate(BaseModel):
    maintenance: bool | None = None


def _json(ctx: Context, user: User, app: App) -> dict[str, Any]:
    with ctx.store.session() as s:
        release = current_release(s, app)
        tier = app_process_tier(s, app)
    released_at = release.created_at if release and release.slug_id else None
    return serializers.app_json(ctx.settings, app, user, released_at, tier)


@router.get("/apps")
def list_apps(ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return [_json(ctx, user, app) for app in apps_service.list_apps(ctx, user)]


@router.post("/apps", status_code=201)
def create_app(ctx: CtxDep, user: UserDep, body: AppCreate | None = None) -> dict[str, Any]:
    app = apps_service.create_app(ctx, user, body.name if body else None)
    return _json(ctx, user, app)


@router.get("/apps/{app}")
def get_app(app: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _json(ctx, user, apps_service.get_app(ctx, user, app))


@router.patch("/apps/{app}")
def update_app(app: str, body: AppUpdate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row = apps_service.get_app(ctx, user, app)
    if body.maintenance is not None:
        row = apps_service.set_maintenance(ctx, user, app, body.maintenance)
    return _json(ctx, user, row)


@router.delete("/apps/{app}")
def destroy_app(app: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row = apps_service.get_app(ctx, user, app)
    result = _json(ctx, user, row)
    apps_service.destroy_app(ctx, user, app)
    return result
