"""/apps/{app}/config-vars: PATCH with null values unsets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from kapal.api.deps import CtxDep, UserDep
from kapal.domain.errors import InvalidParams
from kapal.services import config as config_service

router = APIRouter()


@router.get("/apps/{app}/config-vars")
def get_config(app: str, ctx: CtxDep, user: UserDep) -> dict[str, str]:
    return config_service.get_config(ctx, user, app)


@router.patch("/apps/{app}/config-vars")
def update_config(
    app: str, ctx: CtxDep, user: UserDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, str]:
    changes: dict[str, str | None] = {}
    for key, value in body.items():
        if value is not None and not isinstance(value, str):
            raise InvalidParams(f"Value of {key} must be a string or null.")
        changes[key] = value
    config, _ = config_service.update_config(ctx, user, app, changes)
    return config
