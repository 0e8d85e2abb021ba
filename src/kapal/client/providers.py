"""Add-on providers over Kapal's API (/addon-providers): operators register third-party
services reached through Heroku's Add-on Partner API."""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast
from urllib.parse import quote

from kapal.client.http import KapalClient

PATH = "/addon-providers"


class ProviderPlan(TypedDict):
    name: str
    description: NotRequired[str]


class Provider(TypedDict):
    id: str
    name: str
    base_url: str
    plans: list[ProviderPlan]
    config_vars: list[str]


def _one(ident: str) -> str:
    return f"{PATH}/{quote(ident, safe='')}"


def providers(client: KapalClient) -> list[Provider]:
    return cast(list[Provider], client.request("GET", PATH).json())


def add_provider(client: KapalClient, manifest: dict[str, object]) -> Provider:
    """`manifest`: id, base_url, password, plans, and optionally name and config_vars."""
    return cast(Provider, client.request("POST", PATH, json_body=manifest).json())


def update_provider(client: KapalClient, ident: str, changes: dict[str, object]) -> Provider:
    return cast(Provider, client.request("PATCH", _one(ident), json_body=changes).json())


def remove_provider(client: KapalClient, ident: str) -> Provider:
    return cast(Provider, client.request("DELETE", _one(ident)).json())
