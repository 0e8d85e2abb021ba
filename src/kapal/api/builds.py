"""/apps/{app}/builds and the build output stream. The build queue lives as long as the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from kapal.api.deps import CtxDep, UserDep
from kapal.api.serializers import ts, user_ref
from kapal.build.queue import build_queue
from kapal.services.build_job import Builder
from kapal.services.builds import (
    BuildView,
    check_output_secret,
    create_build,
    fail_interrupted_builds,
    get_build,
    list_builds,
    output_stream_url,
    purge_build_cache,
    stream_output,
)
from kapal.services.context import Context
from kapal.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the build queue with the app; builds still running at shutdown are failed."""
    ctx = cast(Context, app.state.ctx)
    await run_in_threadpool(fail_interrupted_builds, ctx)
    async with build_queue(ctx.settings.build_concurrency) as queue:
        app.state.builder = Builder(ctx, queue)
        yield


router = APIRouter(lifespan=lifespan)


class SourceBlobIn(BaseModel):
    url: str
    version: str | None = None
    checksum: str | None = None
    version_description: str | None = None


class BuildpackIn(BaseModel):
    url: str


class BuildIn(BaseModel):
    source_blob: SourceBlobIn
    buildpacks: list[BuildpackIn] | None = None  # instead of the app's, for this build


def build_json(settings: Settings, view: BuildView) -> dict[str, Any]:
    build, release = view.build, view.release
    return {
        "id": build.id,
        "app": {"id": view.app.id, "name": view.app.name},
        "buildpacks": [{"url": url, "name": url} for url in build.buildpacks] or None,
        "created_at": ts(build.created_at),
        "output_stream_url": output_stream_url(settings, build.id),
        # version and status are Kapal's additions: the git hook needs them.
        "release": (
            {"id": release.id, "version": release.version, "status": release.status}
            if release
            else None
        ),
        "slug": {"id": build.slug_id} if build.slug_id else None,
        "source_blob": {
            "checksum": None,
            "url": view.source_url,
            "version": build.source_version,
            "version_description": None,
        },
        "stack": "kapal-24",
        "status": build.status,
        "updated_at": ts(build.updated_at),
        "user": user_ref(view.user),
    }


@router.post("/apps/{app}/builds", status_code=201)
async def post_build(
    app: str, body: BuildIn, request: Request, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    blob = body.source_blob
    buildpacks = None if body.buildpacks is None else [b.url for b in body.buildpacks]
    view = await run_in_threadpool(create_build, ctx, user, app, blob.url, blob.version, buildpacks)
    builder = cast(Builder, request.app.state.builder)
    builder.start(view.build.id)  # on the event loop: the queue's TaskGroup is not thread-safe
    return build_json(ctx.settings, view)


@router.get("/apps/{app}/builds")
def get_builds(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return [build_json(ctx.settings, view) for view in list_builds(ctx, user, app)]


@router.get("/apps/{app}/builds/{build_id}")
def get_one_build(app: str, build_id: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return build_json(ctx.settings, get_build(ctx, user, app, build_id))


@router.delete("/apps/{app}/build-cache")
def delete_build_cache(app: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    purge_build_cache(ctx, user, app)
    return {}


@router.get("/build-output/{build_id}/{secret}")
async def get_build_output(build_id: str, secret: str, ctx: CtxDep) -> StreamingResponse:
    await run_in_threadpool(check_output_secret, ctx.settings, build_id, secret)
    return StreamingResponse(
        stream_output(ctx, build_id),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
