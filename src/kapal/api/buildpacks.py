"""/apps/{app}/buildpack-installations, shaped like Heroku's: PUT replaces the whole list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from kapal.api.deps import CtxDep, UserDep
from kapal.services import buildpacks as buildpacks_service

router = APIRouter()


class Update(BaseModel):
    buildpack: str


class Updates(BaseModel):
    updates: list[Update]


def installations(urls: list[str]) -> list[dict[str, Any]]:
    return [{"ordinal": i, "buildpack": {"url": url, "name": url}} for i, url in enumerate(urls)]


@router.get("/apps/{app}/buildpack-installations")
def list_installations(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return installations(buildpacks_service.get_buildpacks(ctx, user, app))


@router.put("/apps/{app}/buildpack-installations")
def replace_installations(
    app: str, body: Updates, ctx: CtxDep, user: UserDep
) -> list[dict[str, Any]]:
    urls = [update.buildpack for update in body.updates]
    return installations(buildpacks_service.set_buildpacks(ctx, user, app, urls))
