"""/apps/{app}/formation and /apps/{app}/dynos: scaling, restarts, stops, one-off dynos."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from kapal.api import serializers
from kapal.api.deps import CtxDep, UserDep
from kapal.domain.errors import InvalidParams
from kapal.services import dynos as dynos_service
from kapal.services import formation as formation_service
from kapal.services.apps import get_app
from kapal.services.eco import scaling_notice
from kapal.services.formation import Update

router = APIRouter()


class FormationUpdate(BaseModel):
    type: str | None = None
    process: str | None = None  # older clients
    quantity: int | str | None = None
    size: str | None = None
    dyno_size: dict[str, str] | str | None = None


class FormationBatch(BaseModel):
    updates: list[FormationUpdate]


class DynoCreate(BaseModel):
    command: str
    attach: bool = False
    size: str | None = None
    type: str | None = None
    env: dict[str, str | int | float] | None = None  # Heroku's CLI sends COLUMNS as a number
    tty: bool | None = None  # default: a terminal for attached dynos, unless force_no_tty
    force_no_tty: bool | None = None
    time_to_live: int | None = None


def _update(type_: str | None, body: FormationUpdate) -> Update:
    type_ = type_ or body.type or body.process
    if not type_:
        raise InvalidParams("Each formation update needs a type.")
    quantity, op = body.quantity, "="
    if isinstance(quantity, str):
        # The Heroku CLI sends strings: "2", and "+1"/"-1" (relative) for `ps:scale web+1`.
        text = quantity.strip()
        if text[:1] in ("+", "-"):
            op, text = text[0], text[1:]
        if not text.isdigit():
            raise InvalidParams(
                f"Invalid quantity {quantity!r}: expected a number, +N or -N (relative)."
            )
        quantity = int(text)
    size = body.size
    if isinstance(body.dyno_size, dict):
        size = body.dyno_size.get("name") or size
    elif isinstance(body.dyno_size, str):
        size = body.dyno_size
    return Update(type_, quantity, size, op)


def _formation(ctx: CtxDep, user: UserDep, app: str) -> list[dict[str, Any]]:
    row_app = get_app(ctx, user, app)
    rows, types = formation_service.list_formation(ctx, user, app)
    return [serializers.formation_json(row_app, r, types.get(r.type, "")) for r in rows]


@router.get("/apps/{app}/formation")
def list_formation(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return _formation(ctx, user, app)


def _warn_of_quota(response: Response, ctx: CtxDep, user: UserDep, app: str) -> None:
    notice = scaling_notice(ctx, user, app)
    if notice is not None:
        response.headers["Warning-Message"] = notice  # the Heroku CLI prints it as a warning


@router.patch("/apps/{app}/formation")
def batch_update(
    app: str, body: FormationBatch, response: Response, ctx: CtxDep, user: UserDep
) -> list[dict[str, Any]]:
    changed = formation_service.scale(ctx, user, app, [_update(None, u) for u in body.updates])
    _warn_of_quota(response, ctx, user, app)
    types = {r.type for r in changed}
    return [f for f in _formation(ctx, user, app) if f["type"] in types]


@router.patch("/apps/{app}/formation/{type_}")
def update_one(
    app: str, type_: str, body: FormationUpdate, response: Response, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    formation_service.scale(ctx, user, app, [_update(type_, body)])
    _warn_of_quota(response, ctx, user, app)
    return next(f for f in _formation(ctx, user, app) if f["type"] == type_)


@router.get("/apps/{app}/dynos")
def list_dynos(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    row_app = get_app(ctx, user, app)
    return [serializers.dyno_json(row_app, d) for d in dynos_service.list_dynos(ctx, user, app)]


@router.post("/apps/{app}/dynos", status_code=201)
def create_dyno(app: str, body: DynoCreate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row_app = get_app(ctx, user, app)
    tty = body.attach and not body.force_no_tty if body.tty is None else body.tty
    if tty and body.force_no_tty:
        raise InvalidParams("tty and force_no_tty contradict each other.")
    dyno, secret = dynos_service.run_one_off(
        ctx,
        user,
        app,
        body.command,
        attach=body.attach,
        size=body.size,
        env={k: str(v) for k, v in (body.env or {}).items()},
        tty=tty,
    )
    attach_url = (
        f"rendezvous://localhost:{ctx.settings.rendezvous_port}/{secret}" if secret else None
    )
    return serializers.dyno_json(row_app, dyno, attach_url)


@router.delete("/apps/{app}/dynos", status_code=202)
def restart_all(app: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    formation_service.restart(ctx, user, app)
    return {}


@router.delete("/apps/{app}/dynos/{name}", status_code=202)
def restart_dyno(app: str, name: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    formation_service.restart(ctx, user, app, name)
    return {}


@router.delete("/apps/{app}/formations/{type_}", status_code=202)
def restart_type(app: str, type_: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    formation_service.restart(ctx, user, app, type_)
    return {}


@router.post("/apps/{app}/dynos/{name}/actions/stop", status_code=202)
def stop_dyno(app: str, name: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row_app = get_app(ctx, user, app)
    return serializers.dyno_json(row_app, dynos_service.stop_dyno(ctx, user, app, name))


@router.post("/apps/{app}/formations/{type_}/actions/stop", status_code=202)
def stop_type(app: str, type_: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    dynos_service.stop_type(ctx, user, app, type_)
    return {}
