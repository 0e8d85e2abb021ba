"""The API's ASGI app: the Platform API routes; the entry point adds git and the dashboard."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from kapal.api import (
    account,
    addon_providers,
    addons,
    apps,
    buildpacks,
    builds,
    config,
    domains,
    drains,
    dynos,
    errors,
    logs,
    metrics,
    pg,
    pgbackups,
    platform,
    redis,
    releases,
    sni_endpoints,
    sources,
)
from kapal.api.limits import JsonBodyLimit
from kapal.api.ratelimit import HOURLY, Buckets, PlatformHeaders
from kapal.services.context import Context


def create_api(
    ctx: Context, extra_routers: tuple[APIRouter, ...] = (), rate_limit: int = HOURLY
) -> FastAPI:
    app = FastAPI(title="Kapal Platform API", version="3", docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    errors.install(app)
    app.add_middleware(JsonBodyLimit)
    app.add_middleware(PlatformHeaders, buckets=Buckets(rate_limit))
    modules = (
        account,
        apps,
        dynos,
        config,
        releases,
        logs,
        sources,
        builds,
        buildpacks,
        addons,
        addon_providers,
        pg,
        pgbackups,
        metrics,
        domains,
        sni_endpoints,
        drains,
        redis,
        platform,
    )
    for module in modules:
        app.include_router(module.router)
    for router in extra_routers:
        app.include_router(router)
    return app
