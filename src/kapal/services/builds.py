"""Builds: uploaded sources, build rows, the build job (slug -> release) and its output.

A build runs as a job of the API's build queue. Its output is a file, builds_dir/<id>.log,
that the output stream URL follows until the build's status leaves `pending`; the status is
written only after the last line, and only once the release phase (if any) has finished.
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
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from uv import find_uv_bin

from kapal.build.buildpack import Buildpack, CompileDirs
from kapal.build.compiler import COMPILE_TIMEOUT, compile_slug
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed
from kapal.build.python import PythonBuildpack
from kapal.build.queue import BuildQueue
from kapal.build.slugs import SlugStore
from kapal.build.sources import SourceTooLarge, receive
from kapal.build.tail import follow
from kapal.domain.errors import InvalidParams, KapalError, NotFound
from kapal.services.access import find_app
from kapal.services.auth import hash_secret
from kapal.services.context import Context
from kapal.services.deploy import release_slug
from kapal.settings import Settings
from kapal.store.models import App, Build, Release, Slug, Source, User, new_id, now

log = logging.getLogger(__name__)

SOURCE_TTL = timedelta(hours=1)
RELEASE_TIMEOUT = 3600 + 60.0  # Heroku's release phase limit, and a little more
RELEASE_POLL = 0.2
NO_SOURCE = "Couldn't find that source."


class PayloadTooLarge(KapalError):
    id = "bad_request"
    status = 413


# --- sources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceBlob:
    get_url: str
    put_url: str


def source_url(settings: Settings, source_id: str, secret: str) -> str:
    return f"{settings.api_url}/sources/{source_id}/{secret}"


def _source_file(settings: Settings, source_id: str) -> Path:
    return settings.sources_dir / f"{source_id}.tar.gz"


def create_source(ctx: Context, user: User) -> SourceBlob:
    """A place to upload one source tarball, valid for an hour; its URLs carry the secret."""
    secret = secrets.token_urlsafe(32)
    with ctx.store.session() as s:
        expired = list(s.scalars(select(Source).where(Source.created_at < now() - SOURCE_TTL)))
        for old in expired:
            s.delete(old)
        source = Source(user_id=user.id, secret_hash=hash_secret(secret))
        s.add(source)
        s.flush()
    for old in expired:
        _source_file(ctx.settings, old.id).unlink(missing_ok=True)
    url = source_url(ctx.settings, source.id, secret)
    return SourceBlob(get_url=url, put_url=url)


def _find_source(ctx: Context, source_id: str, secret: str) -> Source:
    with ctx.store.session() as s:
        source = s.get(Source, source_id)
    if (
        source is None
        or not hmac.compare_digest(source.secret_hash, hash_secret(secret))
        or source.created_at < now() - SOURCE_TTL
    ):
        raise NotFound(NO_SOURCE)
    return source


async def upload_source(
    ctx: Context, source_id: str, secret: str, chunks: AsyncIterable[bytes]
) -> int:
    """Store the uploaded tarball (at most slug_max_bytes); its size."""
    source = await asyncio.to_thread(_find_source, ctx, source_id, secret)
    try:
        size = await receive(
            _source_file(ctx.settings, source.id), chunks, ctx.settings.slug_max_bytes
        )
    except SourceTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    await asyncio.to_thread(_mark_uploaded, ctx, source.id)
    return size


def _mark_uploaded(ctx: Context, source_id: str) -> None:
    with ctx.store.session() as s:
        s.execute(update(Source).where(Source.id == source_id).values(uploaded=True))


def uploaded_source(ctx: Context, source_id: str, secret: str) -> Path:
    """The stored tarball behind a source URL."""
    source = _find_source(ctx, source_id, secret)
    path = _source_file(ctx.settings, source.id)
    if not source.uploaded or not path.is_file():
        raise NotFound("Nothing has been uploaded to this source yet.")
    return path


def parse_source_url(settings: Settings, url: str) -> tuple[str, str] | None:
    """(source id, secret) of a URL from create_source, also in its 127.0.0.1 spelling."""
    for base in (settings.api_url, f"http://127.0.0.1:{settings.api_port}"):
        prefix = f"{base}/sources/"
        if url.startswith(prefix):
            source_id, _, secret = url.removeprefix(prefix).partition("/")
            if source_id and secret and "/" not in secret:
                return source_id, secret
    return None


# --- build rows ----------------------------------------------------------------------------


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


def _input_path(settings: Settings, build_id: str) -> Path:
    return settings.builds_dir / f"{build_id}.source.tar.gz"


def create_build(
    ctx: Context, user: User, app_ident: str, url: str, version: str | None
) -> BuildView:
    """A pending build of an uploaded source; start it with Builder.start."""
    ids = parse_source_url(ctx.settings, url)
    if ids is None:
        raise InvalidParams(
            "source_blob.url must be a source URL from POST /sources on this Kapal."
        )
    if version is not None and len(version) > 64:
        raise InvalidParams("source_blob.version must be at most 64 characters.")
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
    try:
        source_file = uploaded_source(ctx, *ids)
    except NotFound as exc:
        raise InvalidParams(f"source_blob.url: {exc.message}") from None
    # The build keeps its own link to the input: sources expire, builds may wait in the queue.
    build_id = new_id()
    ctx.settings.builds_dir.mkdir(parents=True, exist_ok=True)
    target = _input_path(ctx.settings, build_id)
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
        _input_path(ctx.settings, build.id).unlink(missing_ok=True)
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


# --- the build job -------------------------------------------------------------------------


class Builder:
    """Runs builds on a queue: compile a slug, release it, wait for the release phase."""

    def __init__(
        self,
        ctx: Context,
        queue: BuildQueue,
        *,
        buildpacks: Sequence[Buildpack] | None = None,
        compile_timeout: float = COMPILE_TIMEOUT,
        release_timeout: float = RELEASE_TIMEOUT,
    ) -> None:
        self.ctx = ctx
        self.queue = queue
        self.buildpacks = buildpacks or [PythonBuildpack(ctx.settings.build_python, find_uv_bin())]
        self.compile_timeout = compile_timeout
        self.release_timeout = release_timeout

    def start(self, build_id: str) -> None:
        self.queue.submit(f"build {build_id}", lambda: self.run(build_id))

    async def run(self, build_id: str) -> None:
        settings = self.ctx.settings
        build, app, user = await asyncio.to_thread(self._load, build_id)
        out = BuildOutput(log_path(settings, build_id))
        work = settings.builds_dir / "tmp" / build_id
        status, slug_id, release_id = "failed", None, None
        self.ctx.event(app.id, f"Build started by user {user.email}")
        try:
            compiled = await compile_slug(
                _input_path(settings, build_id),
                CompileDirs(work, settings.cache_dir / app.id),
                out,
                self.buildpacks,
                SlugStore(settings.slugs_dir, settings.slug_max_bytes),
                timeout=self.compile_timeout,
            )
            slug = Slug(
                app_id=app.id,
                checksum=compiled.checksum,
                size=compiled.size,
                process_types=compiled.process_types,
                commit=build.source_version,
            )
            slug_id = await asyncio.to_thread(self._insert, slug)
            self.ctx.event(app.id, "Build succeeded")
            status = "succeeded"
            release_id = await self._release(app, user, slug_id, out)
        except BuildFailed:
            self.ctx.event(app.id, "Build failed -- check your build output")
        except asyncio.CancelledError:
            status = "failed"
            out.error("The build was interrupted because Kapal's API stopped.")
            self.ctx.event(app.id, "Build failed -- check your build output")
            shutil.rmtree(work, ignore_errors=True)
            raise
        except Exception:
            status = "failed"
            log.exception("build %s of app %s crashed", build_id, app.name)
            out.error("The build failed because of an internal error in Kapal.")
            self.ctx.event(app.id, "Build failed -- check your build output")
        finally:
            out.close()  # every line is written before the status leaves `pending`
            self._finish(build_id, status, slug_id, release_id)
            _input_path(settings, build_id).unlink(missing_ok=True)
        await asyncio.to_thread(shutil.rmtree, work, True)

    def _load(self, build_id: str) -> tuple[Build, App, User]:
        with self.ctx.store.session() as s:
            build = s.get(Build, build_id)
            if build is None:
                raise LookupError(f"build {build_id} vanished before it started")
            app = s.get(App, build.app_id)
            user = s.get(User, build.user_id)
            assert app is not None and user is not None
            return build, app, user

    def _insert(self, slug: Slug) -> str:
        with self.ctx.store.session() as s:
            s.add(slug)
            s.flush()
            return slug.id

    def _finish(
        self, build_id: str, status: str, slug_id: str | None, release_id: str | None
    ) -> None:
        with self.ctx.store.session() as s:
            s.execute(
                update(Build)
                .where(Build.id == build_id)
                .values(status=status, slug_id=slug_id, release_id=release_id, updated_at=now())
            )

    async def _release(self, app: App, user: User, slug_id: str, out: BuildOutput) -> str:
        out.step("Launching...")
        release = await asyncio.to_thread(release_slug, self.ctx, app.id, user, slug_id)
        if release.status == "pending":
            out.error(
                "Release command declared: this new release will not be available "
                "until the command succeeds."
            )
            out.detail("Running release command...")
            release = await self._await_release(release.id)
            for line in release.output.splitlines():
                out.detail(line)
            if release.status != "succeeded":
                out.error(f"Release command failed; v{release.version} was not deployed.")
                return release.id
        out.detail(f"Released v{release.version}")
        out.detail(f"{self.ctx.settings.web_url(app.name)} deployed to Kapal")
        return release.id

    async def _await_release(self, release_id: str) -> Release:
        """Poll until the agent has run the release phase (or it took too long)."""
        deadline = time.monotonic() + self.release_timeout
        while True:
            release = await asyncio.to_thread(self._get_release, release_id)
            if release.status != "pending":
                return release
            if time.monotonic() > deadline:
                return await asyncio.to_thread(self._time_out_release, release_id)
            await asyncio.sleep(RELEASE_POLL)

    def _get_release(self, release_id: str) -> Release:
        with self.ctx.store.session() as s:
            release = s.get(Release, release_id)
            assert release is not None
            return release

    def _time_out_release(self, release_id: str) -> Release:
        with self.ctx.store.session() as s:
            s.execute(
                update(Release)
                .where(Release.id == release_id, Release.status == "pending")
                .values(status="failed", output="The release command did not finish in time.")
            )
            release = s.get(Release, release_id)
            assert release is not None
            return release
