"""Add-on providers (Kapal's own paths): /addon-providers[/{id}], for operators.

The password a provider is called with is write-only: no response carries it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kapal.addons.manifest import PlanSpec
from kapal.api.deps import CtxDep, UserDep
from kapal.api.serializers import ts
from kapal.services import addon_providers as providers
from kapal.store.models import AddonProvider

router = APIRouter()


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str | None = None
    base_url: str
    password: str
    plans: list[PlanIn]
    config_vars: list[str] = []


class ProviderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    base_url: str | None = None
    password: str | None = None
    plans: list[PlanIn] | None = None
    config_vars: list[str] | None = None


def _plans(plans: list[PlanIn]) -> list[PlanSpec]:
    return [PlanSpec(p.name, p.description) for p in plans]


def _provider_json(row: AddonProvider) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "base_url": row.base_url,
        "plans": [{"name": p["name"], "description": p.get("description", "")} for p in row.plans],
        "config_vars": list(row.config_vars),
        "created_at": ts(row.created_at),
        "updated_at": ts(row.updated_at),
    }


@router.get("/addon-providers")
def list_providers(ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return [_provider_json(row) for row in providers.list_providers(ctx, user)]


@router.post("/addon-providers", status_code=201)
def add_provider(body: ProviderCreate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row = providers.add_provider(
        ctx,
        user,
        ident=body.id,
        name=body.name,
        base_url=body.base_url,
        password=body.password,
        plans=_plans(body.plans),
        config_vars=body.config_vars,
    )
    return _provider_json(row)


@router.get("/addon-providers/{ident}")
def get_provider(ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _provider_json(providers.get_provider(ctx, user, ident))


@router.patch("/addon-providers/{ident}")
def update_provider(ident: str, body: ProviderUpdate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row = providers.update_provider(
        ctx,
        user,
        ident,
        name=body.name,
        base_url=body.base_url,
        password=body.password,
        plans=_plans(body.plans) if body.plans is not None else None,
        config_vars=body.config_vars,
    )
    return _provider_json(row)


@router.delete("/addon-providers/{ident}")
def remove_provider(ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _provider_json(providers.remove_provider(ctx, user, ident))
