"""/apps/{app}/log-drains: list, add, info, remove (Heroku's log-drain resource)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kapal.api.deps import CtxDep, UserDep
from kapal.api.serializers import app_ref, ts
from kapal.services import drains as drains_service
from kapal.store.models import App, LogDrain

router = APIRouter()


class DrainCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str


def drain_json(app: App, drain: LogDrain) -> dict[str, Any]:
    return {
        "id": drain.id,
        "addon": None,
        "app": app_ref(app),
        "url": drain.url,
        "token": drain.token,
        "created_at": ts(drain.created_at),
        "updated_at": ts(drain.updated_at),
    }


@router.get("/apps/{app}/log-drains")
def list_drains(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    row, drains = drains_service.list_drains(ctx, user, app)
    return [drain_json(row, drain) for drain in drains]


@router.post("/apps/{app}/log-drains", status_code=201)
def add(app: str, body: DrainCreate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return drain_json(*drains_service.add_drain(ctx, user, app, body.url))


# `{ident:path}`: a drain is also named by its URL, which has slashes.
@router.get("/apps/{app}/log-drains/{ident:path}")
def info(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return drain_json(*drains_service.get_drain(ctx, user, app, ident))


@router.delete("/apps/{app}/log-drains/{ident:path}")
def remove(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return drain_json(*drains_service.remove_drain(ctx, user, app, ident))
