"""kapal-redis calls: Heroku's data API paths for Redis, served by Kapal's own API."""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast
from urllib.parse import quote

from kapal.client.http import KapalClient


class InfoRow(TypedDict):
    name: str
    values: list[str]


class RedisDatabase(TypedDict):
    addon_id: str
    name: str
    plan: str
    version: str | None
    info: list[InfoRow]
    config_vars: NotRequired[list[str]]


class PolicySetting(TypedDict):
    value: str
    default: str
    values: dict[str, str]  # policy: what it does


class RedisConfig(TypedDict):
    maxmemory_policy: PolicySetting


def _path(addon: str) -> str:
    return f"/redis/v0/databases/{quote(addon, safe='')}"


def redis_database(client: KapalClient, addon: str) -> RedisDatabase:
    return cast(RedisDatabase, client.request("GET", _path(addon)).json())


def set_maxmemory_policy(client: KapalClient, addon: str, policy: str) -> RedisConfig:
    body = {"maxmemory_policy": policy}
    response = client.request("PATCH", f"{_path(addon)}/config", json_body=body)
    return cast(RedisConfig, response.json())
