"""Log drains over the Platform API."""

from __future__ import annotations

from typing import TypedDict, cast
from urllib.parse import quote

from kapal.client.http import KapalClient


class Drain(TypedDict):
    id: str
    url: str
    token: str


def _drains(app: str) -> str:
    return f"/apps/{quote(app, safe='')}/log-drains"


def drains(client: KapalClient, app: str) -> list[Drain]:
    return cast(list[Drain], client.request("GET", _drains(app)).json())


def add_drain(client: KapalClient, app: str, url: str) -> Drain:
    response = client.request("POST", _drains(app), json_body={"url": url})
    return cast(Drain, response.json())


def remove_drain(client: KapalClient, app: str, ident: str) -> Drain:
    response = client.request("DELETE", f"{_drains(app)}/{quote(ident, safe='')}")
    return cast(Drain, response.json())
