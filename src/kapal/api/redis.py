"""kapal-redis at the paths and in the shapes of Heroku's data API for Redis
(`/redis/v0/databases/{addon}`), which `redis:info` and `redis:maxmemory` use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from kapal.addons.redis_conf import DEFAULT_POLICY, POLICIES
from kapal.api.deps import CtxDep, UserDep
from kapal.api.serializers import app_ref, ts
from kapal.services import redis as redis_service
from kapal.services.redis import RedisDatabase, info_rows

router = APIRouter()


class ConfigUpdate(BaseModel):
    maxmemory_policy: str


def _database_json(db: RedisDatabase) -> dict[str, Any]:
    return {
        "addon_id": db.addon.id,
        "name": db.addon.name,
        "app": app_ref(db.app),
        "config_vars": list(db.config_vars),
        "plan": db.plan,
        "created_at": ts(db.addon.created_at),
        "version": (db.info or {}).get("redis_version"),
        "resource_url": db.addon.config.get("URL"),  # as REDIS_URL, which its owner can read
        "prefer_native_tls": False,
        "info": [{"name": name, "values": [value]} for name, value in info_rows(db)],
    }


def _config_json(policy: str) -> dict[str, Any]:
    return {
        "maxmemory_policy": {
            "desc": "Sets the key eviction policy used when the memory limit is reached.",
            "value": policy,
            "default": DEFAULT_POLICY,
            "values": POLICIES,
        },
    }


@router.get("/redis/v0/databases/{addon}")
def get_database(addon: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _database_json(redis_service.redis_database(ctx, user, addon))


@router.get("/redis/v0/databases/{addon}/config")
def get_config(addon: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _config_json(redis_service.maxmemory_policy(ctx, user, addon))


@router.patch("/redis/v0/databases/{addon}/config")
def update_config(addon: str, body: ConfigUpdate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    policy = redis_service.set_maxmemory_policy(ctx, user, addon, body.maxmemory_policy)
    return _config_json(policy)
