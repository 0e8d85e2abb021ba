"""/apps/{app}/releases: list (with Range), info, a release's config vars, rollback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel

from kapal.api import serializers
from kapal.api.deps import CtxDep, UserDep
from kapal.api.ranges import parse_range
from kapal.services.access import find_app
from kapal.services.releases import (
    current_release,
    find_release,
    list_releases,
    roll_back,
)
from kapal.store.models import App, Release, User

router = APIRouter()


class RollbackBody(BaseModel):
    release: str | int | None = None
    slug: str | None = None


def _json(s: Any, app: App, release: Release, current: Release | None) -> dict[str, Any]:
    user = s.get(User, release.user_id) if release.user_id else None
    return serializers.release_json(app, release, user, current.version if current else None)


@router.get("/apps/{app}/releases")
def get_releases(
    app: str,
    response: Response,
    ctx: CtxDep,
    user: UserDep,
    range_: str | None = Header(None, alias="Range"),
) -> list[dict[str, Any]]:
    wanted = parse_range(range_, ("version", "id"), "version")
    response.headers["Accept-Ranges"] = "id, version"
    with ctx.store.session() as s:
        row = find_app(s, user, app)
        rows = list_releases(s, row)
        current = current_release(s, row)
        if wanted.descending:
            rows.reverse()
        if len(rows) > wanted.max:
            response.status_code = 206
        return [_json(s, row, r, current) for r in rows[: wanted.max]]


@router.get("/apps/{app}/releases/{ident}")
def get_release(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    with ctx.store.session() as s:
        row = find_app(s, user, app)
        return _json(s, row, find_release(s, row, ident), current_release(s, row))


@router.get("/apps/{app}/releases/{ident}/config-vars")
def get_release_config(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, str]:
    """The config vars the release ran with (`heroku releases:info`)."""
    with ctx.store.session() as s:
        return dict(find_release(s, find_app(s, user, app), ident).config)


@router.post("/apps/{app}/releases", status_code=201)
def create_rollback(app: str, body: RollbackBody, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    target = str(body.release) if body.release is not None else None
    release = roll_back(ctx, user, app, target)
    return get_release(app, str(release.version), ctx, user)
