"""The build job: compile a slug, release it, wait for the release phase; its output is a
file that the output stream URL follows until the build's status leaves `pending`."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sqlalchemy import update
from uv import find_uv_bin

from kapal.build.buildpack import Buildpack, CompileDirs
from kapal.build.cgroup import BuildCgroup
from kapal.build.classic import ClassicBuildpack
from kapal.build.compiler import CompiledSlug, compile_slug
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed
from kapal.build.python import PythonBuildpack
from kapal.build.queue import BuildQueue
from kapal.build.sandbox import BuildSandbox
from kapal.build.slugs import SlugStore
from kapal.domain.buildpacks import PYTHON, parse_buildpack
from kapal.domain.errors import KapalError
from kapal.runtime.slugs import built_name
from kapal.sandbox.build_jail import Bind, BuildJail
from kapal.services.addons import AddonView
from kapal.services.appjson import (
    FirstDeploy,
    plan_first_deploy,
    provision_addons,
    remove_addons,
    undo_first_deploy,
)
from kapal.services.builds import input_path, log_path
from kapal.services.context import Context
from kapal.services.deploy import release_slug
from kapal.services.postdeploy import Outcome, run_postdeploy
from kapal.services.releases import latest_release
from kapal.store.models import App, Build, Release, Slug, User, now
from kapal.system_users import RunAs, unprivileged

log = logging.getLogger(__name__)

RELEASE_TIMEOUT = 3600 + 60.0  # Heroku's release phase limit, and a little more
RELEASE_POLL = 0.05


class Builder:
    """Runs builds on a queue: compile a slug, release it, wait for the release phase."""

    warned = False  # that builds have no memory cap: said once per process

    def __init__(
        self, ctx: Context, queue: BuildQueue, *, release_timeout: float = RELEASE_TIMEOUT
    ) -> None:
        self.ctx = ctx
        self.queue = queue
        self.release_timeout = release_timeout
        settings = ctx.settings
        self.sandbox = BuildSandbox(
            settings.sandbox, settings.builds_dir / "sandbox", tmp_size=settings.build_memory
        )

    def _buildpacks(
        self,
        urls: list[str],
        fetch_dir: Path,
        env_dir: Path,
        build_user: Callable[[], RunAs | None],
        jail: BuildJail | None,
    ) -> list[Buildpack]:
        """The buildpacks a build runs: those set, in order, classic ones fetched under
        `fetch_dir` with their ENV_DIR under `env_dir`; without any, the built-in Python
        buildpack detects the app. Their commands run in `jail`, if any."""
        settings = self.ctx.settings

        def python(name: str = PYTHON) -> PythonBuildpack:
            return PythonBuildpack(
                settings.build_python,
                self.uv_bin,
                name=name,
                build_user=build_user,
                runtimes_dir=settings.runtimes_dir,
                runtime_roots=settings.runtime_roots,
                jail=jail,
            )

        if not urls:
            return [python()]
        exports: list[Path] = []  # each classic buildpack's `export`, for those after it
        chosen: list[Buildpack] = []
        for number, url in enumerate(urls, start=1):
            ref = parse_buildpack(url)
            if ref.kind == "builtin":
                chosen.append(python(url))
            else:
                chosen.append(
                    ClassicBuildpack(
                        ref,
                        fetch_dir / str(number),
                        env_dir / str(number),
                        exports,
                        build_user=build_user,
                        jail=jail,
                    )
                )
        return chosen

    @functools.cached_property
    def uv_bin(self) -> str:
        return find_uv_bin()

    def start(self, build_id: str) -> None:
        ahead = self.queue.must_wait_for()
        if ahead:
            out = BuildOutput(log_path(self.ctx.settings, build_id))
            before = (
                "build before it finishes" if ahead == 1 else f"{ahead} builds before it finish"
            )
            out.step(f"Queued: this build starts when the {before}.")
            out.close()
        self.queue.submit(f"build {build_id}", lambda: self.run(build_id))

    async def run(self, build_id: str) -> None:
        settings = self.ctx.settings
        build, app, user, config = await asyncio.to_thread(self._load, build_id)
        out = BuildOutput(log_path(settings, build_id))
        status, slug_id, release_id = "failed", None, None
        try:
            self.ctx.event(app.id, f"Build started by user {user.email}")
            compiled = await self._compile(build, app, config, out)
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
            if release_id is None:  # app.json stopped the deploy: the push is rejected
                status = "failed"
        except BuildFailed:
            self.ctx.event(app.id, "Build failed -- check your build output")
        except asyncio.CancelledError:
            status = "failed"
            out.error("The build was interrupted because Kapal's API stopped.")
            self.ctx.event(app.id, "Build failed -- check your build output")
            raise
        except Exception:
            status = "failed"
            log.exception("build %s of app %s crashed", build_id, app.name)
            out.error("The build failed because of an internal error in Kapal.")
            self.ctx.event(app.id, "Build failed -- check your build output")
        finally:
            out.close()  # every line is written before the status leaves `pending`
            self._finish(build_id, status, slug_id, release_id)
            input_path(settings, build_id).unlink(missing_ok=True)

    async def _compile(
        self, build: Build, app: App, config: dict[str, str], out: BuildOutput
    ) -> CompiledSlug:
        """Compile the build's source into a stored slug, as the app's uid, in the build's
        cgroup, jail and directories, which are gone when this returns (the release phase
        needs none)."""
        settings = self.ctx.settings
        tmp = settings.builds_dir / "tmp"
        work, fetched, env = (tmp / f"{build.id}{suffix}" for suffix in ("", ".buildpacks", ".env"))
        cache = settings.build_cache(app.id)
        cgroup = await asyncio.to_thread(self._cgroup, build.id)
        compiled: CompiledSlug | None = None

        def build_user() -> RunAs | None:
            """The app's own uid, in the build's cgroup (only root can have either); the shared
            user for an app from before apps had uids."""
            user = unprivileged()
            if user is None:
                return None
            if app.uid is not None:
                user = user.as_uid(app.uid)
            return user if cgroup is None else replace(user, enter=cgroup.join)

        try:
            run_as = await asyncio.to_thread(build_user)
            # What the build sees besides its directory (at /app), each at its own path.
            binds = [
                Bind(fetched, writable=True),  # the fetched buildpacks, their HOME
                Bind(env),
                Bind(cache, writable=True),
                Bind(settings.runtimes_dir),
                Bind(Path(self.uv_bin)),
            ]
            try:
                jail = await asyncio.to_thread(self.sandbox.jail, run_as, work, binds)
            except BuildFailed as exc:
                out.error(exc.message)
                raise
            compiled = await compile_slug(
                input_path(settings, build.id),
                CompileDirs(work, cache, config_vars=config),
                out,
                self._buildpacks(build.buildpacks, fetched, env, lambda: run_as, jail),
                SlugStore(settings.slugs_dir, settings.slug_max_bytes),
                timeout=settings.build_timeout,
                explicit=bool(build.buildpacks),
                cgroup=cgroup,
            )
            return compiled
        finally:
            # Shielded: also when the API is stopping, no cgroup or secret file stays. The
            # build's leftovers are killed with its cgroup before the tree is left for the
            # agent: nothing changes it after it was packed.
            leave = None
            if compiled is not None:
                leave = functools.partial(_leave_tree, work, settings.dynos_dir / app.id, compiled)
            await asyncio.shield(
                asyncio.to_thread(self._clean_up, cgroup, work, fetched, env, leave=leave)
            )

    def _cgroup(self, build_id: str) -> BuildCgroup | None:
        """The build's memory cgroup; None where Kapal cannot make one (not root, no
        memory controller), then builds run without a memory cap."""
        if os.geteuid() != 0:
            return None
        cgroup = BuildCgroup.create(build_id, self.ctx.settings.build_memory)
        if cgroup is None and not Builder.warned:
            Builder.warned = True
            log.warning("builds run without a memory cap: no memory cgroup could be made")
        return cgroup

    @staticmethod
    def _clean_up(
        cgroup: BuildCgroup | None, *paths: Path, leave: Callable[[], None] | None = None
    ) -> None:
        """Kill what is left of the build (its cgroup), then `leave` the compiled tree (a
        compile that succeeded), then remove the rest."""
        try:
            if cgroup is not None:
                cgroup.remove()
            if leave is not None:
                leave()
        finally:
            for path in paths:
                shutil.rmtree(path, ignore_errors=True)

    def _load(self, build_id: str) -> tuple[Build, App, User, dict[str, str]]:
        """The build, its app and user, and the config vars the buildpacks see."""
        with self.ctx.store.session() as s:
            build = s.get(Build, build_id)
            if build is None:
                raise LookupError(f"build {build_id} vanished before it started")
            app = s.get(App, build.app_id)
            user = s.get(User, build.user_id)
            assert app is not None and user is not None
            release = latest_release(s, app)
            return build, app, user, dict(release.config) if release else {}

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

    async def _release(self, app: App, user: User, slug_id: str, out: BuildOutput) -> str | None:
        """Release the slug and wait for its release phase. The app's first deploy applies its
        app.json around that (kapal.services.appjson); None when app.json stopped the deploy."""
        setup: FirstDeploy | None = None
        made: list[AddonView] = []
        try:
            setup = await asyncio.to_thread(plan_first_deploy, self.ctx, app.id, slug_id)
            if setup is not None:
                out.step("Applying app.json (first deploy)")
                made = await asyncio.to_thread(
                    provision_addons, self.ctx, user, app.id, setup, out.detail
                )
                for line in setup.summary():
                    out.detail(line)
            out.step("Launching...")
            initial = setup.initial if setup is not None else None
            release = await asyncio.to_thread(
                release_slug, self.ctx, app.id, user, slug_id, initial=initial
            )
        except KapalError as exc:
            out.error(exc.message)
            for line in await asyncio.to_thread(remove_addons, self.ctx, user, app.id, made):
                out.detail(line)
            out.error("Push rejected, app.json could not be applied.")
            self.ctx.event(app.id, "Deploy failed -- check your build output")
            return None
        except BaseException:
            if made:  # interrupted or crashed after provisioning: nothing made may stay
                await asyncio.to_thread(remove_addons, self.ctx, user, app.id, made)
            raise
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
                if setup is not None:
                    undone = await asyncio.to_thread(
                        undo_first_deploy, self.ctx, user, app.id, setup, made
                    )
                    for line in undone:
                        out.detail(line)
                return release.id
        out.detail(f"Released v{release.version}")
        out.detail(f"{self.ctx.settings.web_url(app.name)} deployed to Kapal")
        if setup is not None and setup.postdeploy is not None:
            script = setup.postdeploy
            out.step(f"Running postdeploy: {script.command}")
            try:
                outcome = await run_postdeploy(
                    self.ctx,
                    user,
                    app.id,
                    script.command,
                    out.detail,
                    size=script.size,
                    timeout=self.release_timeout,
                )
            except KapalError as exc:
                outcome = Outcome(None, exc.message)
            if outcome.succeeded:
                out.detail(outcome.describe())
            else:
                out.error(outcome.describe())
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


def _leave_tree(work: Path, app_dynos: Path, compiled: CompiledSlug) -> None:
    """Leave the compiled tree where the agent takes it as the slug's first release instead
    of unpacking the archive again (kapal.runtime.slugs): a rename, as both are in the data
    directory. Best effort: without it the agent unpacks."""
    target = app_dynos / built_name(compiled.checksum.removeprefix("SHA256:"))
    try:
        for directory in (app_dynos.parent, app_dynos):
            directory.mkdir(mode=0o711, exist_ok=True)
            directory.chmod(0o711)  # whatever the umask: the dynos' users pass through
        if not target.exists():
            work.rename(target)
    except OSError as exc:
        log.warning("cannot leave the compiled tree for the agent: %s", exc)
