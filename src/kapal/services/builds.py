"""Build rows, the output stream URL and its secret.

A build runs as a job of the API's build queue (build_job.py). Its output is a file,
builds_dir/<id>.log, that the output stream URL follows until the build's status leaves
`pending`; the status is written only after the last line, and only once the release phase
(if any) has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.build.output import BuildOutput
from kapal.build.tail import follow
from kapal.domain.buildpacks import validate_buildpacks
from kapal.domain.errors import Conflict, InvalidParams, NotFound
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.services.sources import parse_source_url, uploaded_source
from kapal.settings import Settings
from kapal.store.models import App, Build, Release, User, new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildView:
    """A build with what its JSON shows: the app, the user, and the release it made."""

    build: Build
    app: App
    user: User | None
    release: Release | None
    source_url: str | None = None


def log_path(settings: Settings, build_id: str) -> Path:
    return settings.builds_dir / f"{build_id}.log"


def input_path(settings: Settings, build_id: str) -> Path:
    return settings.builds_dir / f"{build_id}.source.tar.gz"


def create_build(
    ctx: Context,
    user: User,
    app_ident: str,
    url: str,
    version: str | None,
    buildpacks: list[str] | None = None,
) -> BuildView:
    """A pending build of an uploaded source, with these buildpacks or else the app's; start
    it with Builder.start."""
    if buildpacks is not None:
        validate_buildpacks(buildpacks)
    ids = parse_source_url(ctx.settings, url)
    if ids is None:
        raise InvalidParams(
            "source_blob.url must be a source URL from POST /sources on this Kapal."
        )
    if version is not None and len(version) > 64:
        raise InvalidParams("source_blob.version must be at most 64 characters.")
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
    if buildpacks is None:
        buildpacks = list(app.buildpacks)
    try:
        source_file = uploaded_source(ctx, *ids)
    except NotFound as exc:
        raise InvalidParams(f"source_blob.url: {exc.message}") from None
    # The build keeps its own link to the input: sources expire, builds may wait in the queue.
    build_id = new_id()
    ctx.settings.builds_dir.mkdir(parents=True, exist_ok=True)
    target = input_path(ctx.settings, build_id)
    try:
        os.link(source_file, target)
    except OSError:
        shutil.copyfile(source_file, target)
    log_path(ctx.settings, build_id).touch()
    try:
        with ctx.store.session() as s:
            build = Build(
                id=build_id,
                app_id=app.id,
                user_id=user.id,
                status="pending",
                source_version=version,
                buildpacks=buildpacks,
            )
            s.add(build)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return BuildView(build, app, user, None, url)


def _view(s: Session, build: Build, app: App) -> BuildView:
    user = s.get(User, build.user_id)
    release = s.get(Release, build.release_id) if build.release_id else None
    return BuildView(build, app, user, release)


def list_builds(ctx: Context, user: User, app_ident: str) -> list[BuildView]:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        rows = s.scalars(
            select(Build).where(Build.app_id == app.id).order_by(Build.created_at, Build.id)
        )
        return [_view(s, build, app) for build in rows]


def get_build(ctx: Context, user: User, app_ident: str, build_id: str) -> BuildView:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        build = s.get(Build, build_id)
        if build is None or build.app_id != app.id:
            raise NotFound(f"Couldn't find build {build_id}.")
        return _view(s, build, app)


def purge_build_cache(ctx: Context, user: User, app_ident: str) -> None:
    """Delete the app's build cache; refused while one of its builds, which uses it, runs."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        running = s.scalar(
            select(Build.id).where(Build.app_id == app.id, Build.status == "pending").limit(1)
        )
    if running is not None:
        raise Conflict("A build of this app is running: purge its cache once the build ends.")
    cache = ctx.settings.build_cache(app.id)
    # Moved aside first: the next build finds either the whole cache or none.
    doomed = ctx.settings.cache_dir / f".purged-{new_id()}"
    try:
        os.rename(cache, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed)


def fail_interrupted_builds(ctx: Context) -> int:
    """Builds left pending by an API that stopped mid-build will never finish: fail them."""
    with ctx.store.session() as s:
        stale = list(s.scalars(select(Build).where(Build.status == "pending")))
        for build in stale:
            build.status = "failed"
    for build in stale:
        path = log_path(ctx.settings, build.id)
        if path.parent.is_dir():
            out = BuildOutput(path)
            out.error("The build was interrupted because Kapal's API stopped.")
            out.close()
        input_path(ctx.settings, build.id).unlink(missing_ok=True)
    return len(stale)


# --- output stream -------------------------------------------------------------------------


def _output_key(settings: Settings) -> bytes:
    path = settings.secrets_dir / "build-output.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".build-output-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(secrets.token_bytes(32))
        # Published whole, or not at all when another request made the key first.
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        os.unlink(temp)
    return path.read_bytes()


def _output_secret(settings: Settings, build_id: str) -> str:
    return hmac.new(_output_key(settings), build_id.encode(), hashlib.sha256).hexdigest()


def output_stream_url(settings: Settings, build_id: str) -> str:
    """Unguessable and needs no token, like Heroku's build-output streams."""
    return f"{settings.api_url}/build-output/{build_id}/{_output_secret(settings, build_id)}"


def check_output_secret(settings: Settings, build_id: str, secret: str) -> None:
    if not hmac.compare_digest(_output_secret(settings, build_id), secret):
        raise NotFound("Couldn't find that build output.")


def _build_status(ctx: Context, build_id: str) -> str | None:
    with ctx.store.session() as s:
        return s.scalar(select(Build.status).where(Build.id == build_id))


async def stream_output(ctx: Context, build_id: str) -> AsyncIterator[bytes]:
    """The build's output so far, then live until the build has finished."""

    async def finished() -> bool:
        return await asyncio.to_thread(_build_status, ctx, build_id) != "pending"

    async for chunk in follow(log_path(ctx.settings, build_id), finished):
        yield chunk
