"""Add-ons: /addon-services, /apps/{app}/addons, /apps/{app}/addon-attachments."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kapal.addons.catalog import Plan, Service, plan_description
from kapal.api.deps import CtxDep, UserDep
from kapal.api.serializers import app_ref, ts
from kapal.domain.errors import NotFound
from kapal.services import addons as addons_service
from kapal.services.addon_plans import change_plan
from kapal.services.addon_providers import catalog
from kapal.services.addons import AddonView
from kapal.services.context import Context
from kapal.store.models import Attachment

router = APIRouter()

_FREE = {"cents": 0, "unit": "month", "contract": False, "metered": False}


class PlanRef(BaseModel):
    name: str


class AttachmentRef(BaseModel):
    name: str | None = None


class AddonCreate(BaseModel):
    # The Heroku CLI sends {"name": "service:plan"} in addons:create, a string in apps:create.
    plan: str | PlanRef
    attachment: AttachmentRef | None = None
    name: str | None = None
    config: dict[str, Any] | None = None
    confirm: str | None = None


def _service_json(service: Service) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "human_name": service.human_name,
        "state": "ga",
        "supports_multiple_installations": True,
        "supports_sharing": False,
        "created_at": None,
        "updated_at": None,
    }


def _addon_json(view: AddonView) -> dict[str, Any]:
    addon, choice = view.addon, view.choice
    return {
        "id": addon.id,
        "name": addon.name,
        "app": app_ref(view.app),
        "addon_service": {
            "id": choice.service.id,
            "name": choice.requested,
            "human_name": choice.service.human_name,
        },
        "plan": {"id": None, "name": choice.plan_name, "price": _FREE},
        "billed_price": {"cents": 0, "contract": False, "unit": "month"},
        "billing_entity": {"id": view.app.id, "name": view.app.name, "type": "app"},
        "state": addon.state,
        "config_vars": view.config_vars,
        "provider_id": addon.provider_id or addon.id,
        "provision_message": view.message,
        "actions": [],
        "web_url": None,
        "created_at": ts(addon.created_at),
        "updated_at": ts(addon.updated_at),
    }


def _attachment_json(view: AddonView, attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "name": attachment.name,
        "namespace": None,
        "app": app_ref(view.app_of(attachment)),
        "addon": {
            "id": view.addon.id,
            "name": view.addon.name,
            "app": app_ref(view.app),
            "plan": {"id": None, "name": view.choice.plan_name},
        },
        # The Heroku CLI's pg:psql matches attachments by these (it asks with
        # Accept-Inclusion: config_vars); always sending them costs nothing.
        "config_vars": view.attachment_vars(attachment),
        "web_url": None,
        "log_input_url": None,
        "created_at": ts(attachment.created_at),
        "updated_at": ts(attachment.created_at),
    }


@router.get("/addon-services")
def list_services(ctx: CtxDep) -> list[dict[str, Any]]:
    """Kapal's own services, then the registered providers'."""
    return [_service_json(s) for s in catalog(ctx)]


def _service(ctx: Context, ident: str) -> Service:
    """By name, alias or id."""
    found = (s for s in catalog(ctx) if ident in (s.name, s.id, *s.aliases))
    service = next(found, None)
    if service is None:
        raise NotFound("Couldn't find that add-on service.")
    return service


@router.get("/addon-services/{ident}")
def get_service(ident: str, ctx: CtxDep) -> dict[str, Any]:
    return _service_json(_service(ctx, ident))


@router.get("/addon-services/{ident}/plans")
def list_plans(ident: str, ctx: CtxDep) -> list[dict[str, Any]]:
    service = _service(ctx, ident)
    return [_plan_json(service, plan) for plan in service.plans]


def _plan_json(service: Service, plan: Plan) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.UUID(service.id), plan.name)),
        "name": f"{service.name}:{plan.name}",
        "human_name": plan.name,
        "description": plan_description(plan),
        "default": plan.name == service.default_plan,
        "state": "public",
        "price": _FREE,
        "addon_service": {"id": service.id, "name": service.name},
        # Kapal's own: what the plan allows, for `kapal addons:plans` (a partner's: unknown).
        "limits": None
        if service.partner
        else {
            "connections": plan.connection_limit,
            "storage_mb": plan.storage_mb or None,
            "memory_mb": plan.memory_mb or None,
            "persistent": plan.persistent,
        },
        "created_at": None,
        "updated_at": None,
    }


@router.get("/addons")
def list_all_addons(ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return [_addon_json(v) for v in addons_service.list_user_addons(ctx, user)]


class AddonResolve(BaseModel):
    model_config = ConfigDict(extra="ignore")

    addon: str  # id, name, an attachment name on `app` (DATABASE) or its var (DATABASE_URL)
    app: str | None = None
    addon_service: str | None = None


@router.post("/actions/addons/resolve")
def resolve_addons(body: AddonResolve, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    """Heroku's add-on resolver (`heroku addons:info DATABASE`): every match."""
    views = addons_service.resolve_addons(ctx, user, body.addon, body.app, body.addon_service)
    return [_addon_json(v) for v in views]


@router.get("/addons/{ident}")
def get_any_addon(ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _addon_json(addons_service.find_user_addon(ctx, user, ident))


@router.get("/addons/{ident}/addon-attachments")
def list_addon_attachments(ident: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    """The add-on's attachments, to its own app and to others (`heroku addons:info`)."""
    view = addons_service.find_user_addon(ctx, user, ident)
    return [_attachment_json(view, a) for a in view.attachments]


@router.get("/apps/{app}/addons")
def list_addons(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return [_addon_json(v) for v in addons_service.list_addons(ctx, user, app)]


@router.post("/apps/{app}/addons", status_code=201)
def create_addon(app: str, body: AddonCreate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    plan = body.plan if isinstance(body.plan, str) else body.plan.name
    view = addons_service.create_addon(
        ctx,
        user,
        app,
        plan,
        attachment_name=body.attachment.name if body.attachment else None,
        name=body.name or None,
        options=body.config,
    )
    return _addon_json(view)


@router.get("/apps/{app}/addons/{ident}")
def get_addon(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _addon_json(addons_service.get_addon(ctx, user, app, ident))


class AddonUpdate(BaseModel):
    # What the Heroku CLI's addons:upgrade sends: {"plan": {"name": "service:plan"}}.
    plan: str | PlanRef


@router.patch("/apps/{app}/addons/{ident}")
def update_addon(
    app: str, ident: str, body: AddonUpdate, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    """Change the add-on's plan (registered providers' add-ons only)."""
    plan = body.plan if isinstance(body.plan, str) else body.plan.name
    return _addon_json(change_plan(ctx, user, app, ident, plan))


@router.delete("/apps/{app}/addons/{ident}")
def destroy_addon(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _addon_json(addons_service.destroy_addon(ctx, user, app, ident))


@router.get("/addon-attachments")
def list_all_attachments(ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    views = addons_service.list_user_addons(ctx, user)
    return [_attachment_json(v, a) for v in views for a in v.attachments]


@router.get("/apps/{app}/addon-attachments")
def list_attachments(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    """The app's attachments: to its own add-ons and to other apps' it uses."""
    views = addons_service.list_addons(ctx, user, app)
    return [
        _attachment_json(v, a)
        for v in views
        for a in v.attachments
        if app in (v.app_of(a).name, v.app_of(a).id)
    ]


@router.get("/apps/{app}/addon-attachments/{ident}")
def get_attachment(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _attachment_json(*addons_service.get_attachment(ctx, user, app, ident))


class AttachmentCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    addon: str  # id or name
    app: str  # id or name
    name: str | None = None


@router.post("/addon-attachments", status_code=201)
def attach(body: AttachmentCreate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _attachment_json(
        *addons_service.attach_addon(ctx, user, body.addon, body.app, body.name)
    )


@router.delete("/addon-attachments/{ident}")
def detach(ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _attachment_json(*addons_service.detach_addon(ctx, user, None, ident))
