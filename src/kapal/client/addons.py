"""Add-on calls the main client does not have: attachments (what `pg:psql` resolves)."""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast
from urllib.parse import quote

from kapal.client.http import KapalClient
from kapal.client.types import Addon, AddonPlan, Ref


class AttachedAddon(TypedDict):
    id: str
    name: str
    app: NotRequired[Ref]
    plan: NotRequired[AddonPlan]


class AddonAttachment(TypedDict):
    id: str
    name: str  # DATABASE
    app: Ref
    addon: AttachedAddon
    config_vars: NotRequired[list[str]]  # ["DATABASE_URL"]


def addon_attachments(client: KapalClient, app: str) -> list[AddonAttachment]:
    """The app's attachments, with their add-on's plan and config var names."""
    response = client.request(
        "GET",
        f"/apps/{quote(app, safe='')}/addon-attachments",
        headers={"Accept-Inclusion": "addon:plan,config_vars"},
    )
    return cast(list[AddonAttachment], response.json())


class AddonService(TypedDict):
    id: str
    name: str
    human_name: str
    state: str


class ServicePlan(TypedDict):
    id: str
    name: str  # service:plan
    human_name: str
    description: str
    default: bool


def addon_services(client: KapalClient) -> list[AddonService]:
    return cast(list[AddonService], client.request("GET", "/addon-services").json())


def addon_plans(client: KapalClient, service: str) -> list[ServicePlan]:
    path = f"/addon-services/{quote(service, safe='')}/plans"
    return cast(list[ServicePlan], client.request("GET", path).json())


def attach_addon(client: KapalClient, addon: str, app: str, name: str | None) -> AddonAttachment:
    body = {"addon": addon, "app": app, "name": name}
    response = client.request("POST", "/addon-attachments", json_body=body)
    return cast(AddonAttachment, response.json())


def detach_addon(client: KapalClient, app: str, name: str) -> AddonAttachment:
    """By the attachment's name (or config var) on the app."""
    path = f"/apps/{quote(app, safe='')}/addon-attachments/{quote(name, safe='')}"
    found = cast(AddonAttachment, client.request("GET", path).json())
    path = f"/addon-attachments/{quote(found['id'], safe='')}"
    return cast(AddonAttachment, client.request("DELETE", path).json())


def change_addon_plan(client: KapalClient, app: str, addon: str, plan: str) -> Addon:
    """`addons:upgrade`: what the Heroku CLI sends, {"plan": {"name": "service:plan"}}."""
    path = f"/apps/{quote(app, safe='')}/addons/{quote(addon, safe='')}"
    response = client.request("PATCH", path, json_body={"plan": {"name": plan}})
    return cast(Addon, response.json())
