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
from kapal.store.models import App, Slug, User

router = APIRouter()


class AppCreate(BaseModel):
    name: str | None = None
    region: str | None = None
    stack: str | None = None


class AppUpdate(BaseModel):
    maintenance: bool | None = None


def _json(ctx: Context, user: User, app: App, *, sizes: bool = False) -> dict[str, Any]:
    """The app; `sizes` adds its repository's size, which takes a walk of the repository on
    disk, so lists send null."""
    with ctx.store.session() as s:
        release = current_release(s, app)
        tier = app_process_tier(s, app)
        slug = s.get(Slug, release.slug_id) if release and release.slug_id else None
    released_at = release.created_at if release and release.slug_id else None
    return serializers.app_json(
        ctx.settings,
        app,
        user,
        released_at,
        tier,
        slug_size=slug.size if slug else None,
        repo_size=apps_service.repo_size(ctx, app) if sizes else None,
    )


@router.get("/apps")
def list_apps(ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return [_json(ctx, user, app) for app in apps_service.list_apps(ctx, user)]


@router.get("/users/{who}/apps")
def list_user_apps(who: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    """What `heroku apps` asks for (`/users/~/apps`): the user's apps, as GET /apps."""
    return [_json(ctx, user, app) for app in apps_service.list_user_apps(ctx, user, who)]


@router.post("/apps", status_code=201)
def create_app(ctx: CtxDep, user: UserDep, body: AppCreate | None = None) -> dict[str, Any]:
    app = apps_service.create_app(ctx, user, body.name if body else None)
    return _json(ctx, user, app)


@router.get("/apps/{app}")
def get_app(app: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _json(ctx, user, apps_service.get_app(ctx, user, app), sizes=True)


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
