"""The Python buildpack: a relocatable virtualenv at .venv, dependencies installed by uv with
an interpreter this machine has, then Django's collectstatic and the runtime defaults.

uv runs the app's code (an sdist's setup.py), and collectstatic runs it too, so when the
platform is root they run as the unprivileged build user (the app's uid), which is given the
build directory and the app's cache first, and in the build's jail when there is one, where
the build directory is /app, as in the app's dynos. The interpreters offered are those that
user can run (in the jail: those it shows, as the dynos' does).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from kapal.build.buildpack import CompileDirs
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed, capture, last_words, query, run_step
from kapal.build.python import interpreters, poetry, profile, runtimes
from kapal.build.python.django import collect_static
from kapal.build.python.versions import (
    VERSION_FILES,
    Interpreter,
    Request,
    choose,
    requested_version,
)
from kapal.build.workspace import hand_over, place_file, read_app_file
from kapal.domain.buildpacks import PYTHON
from kapal.sandbox.build_jail import BuildJail
from kapal.system_users import RunAs, unprivileged

log = logging.getLogger(__name__)

VENV = ".venv"
REQUIREMENTS = "requirements.txt"
PIPENV_LOCK = "Pipfile.lock"
POETRY_LOCK = poetry.POETRY_LOCK
PYPROJECT = poetry.PYPROJECT
UV_LOCK = "uv.lock"
# Each package manager's file, one of which an app must have.
PACKAGE_MANAGER_FILES = (REQUIREMENTS, PIPENV_LOCK, POETRY_LOCK, UV_LOCK)
# Python apps are recognised by these too, but they are not enough to install from.
PYTHON_FILES = (*PACKAGE_MANAGER_FILES, "Pipfile", PYPROJECT)
# pipenv, run by uv, turns Pipfile.lock into hashed requirements (it resolves nothing).
PIPENV = "pipenv==2026.10.3"
# The hashed requirements Pipfile.lock or poetry.lock is turned into, in the cache under kapal/.
EXPORTED = {
    PIPENV_LOCK: "requirements-from-Pipfile.lock.txt",
    POETRY_LOCK: "requirements-from-poetry.lock.txt",
}
# The most of poetry.lock and pyproject.toml the platform reads.
LOCK_LIMIT = 16 * 1024 * 1024


def package_manager(found: Sequence[str]) -> str:
    """The package manager file to install from, among those `found` in the app root (any of
    PYTHON_FILES); a clear refusal when there is none, several, or one Kapal cannot use."""
    managers = [name for name in found if name in PACKAGE_MANAGER_FILES]
    if len(managers) > 1:
        raise BuildFailed(
            f"Multiple Python package manager files were found: {', '.join(managers)}.",
            hint="HINT: keep the one of the package manager you use and remove the others.",
        )
    if managers == [POETRY_LOCK] and PYPROJECT not in found:
        raise BuildFailed(
            "poetry.lock was found, but no pyproject.toml.",
            hint="HINT: commit the pyproject.toml that poetry.lock was made from.",
        )
    if managers:
        return managers[0]
    if "Pipfile" in found:
        raise BuildFailed(
            "A Pipfile was found, but no Pipfile.lock.",
            hint="HINT: run `pipenv lock` and commit Pipfile.lock.",
        )
    if PYPROJECT in found:
        raise BuildFailed(
            "pyproject.toml was found, but no lock file or requirements.txt to install from.",
            hint="HINT: run `uv lock` and commit uv.lock, or list the dependencies in "
            "requirements.txt.",
        )
    raise BuildFailed(f"No {REQUIREMENTS} was found in the root of the app.")


def _replace_dir(new: Path, old: Path) -> None:
    """Put `new` where `old` is (both in a directory the build user owns: no link is
    followed, rmtree and rename work on the names)."""
    shutil.rmtree(old, ignore_errors=True)
    os.rename(new, old)


def _has_files(directory: Path) -> bool:
    try:
        return any(directory.iterdir())
    except OSError:
        return False


def export_poetry_lock(build_dir: Path) -> str:
    """poetry.lock's main packages as hashed requirements, read from the app."""
    pyproject = read_app_file(build_dir, PYPROJECT, LOCK_LIMIT)
    lock = read_app_file(build_dir, POETRY_LOCK, LOCK_LIMIT)
    if pyproject is None or lock is None:
        raise BuildFailed("poetry.lock was found, but no pyproject.toml.")
    try:
        return poetry.requirements(pyproject.decode(), lock.decode())
    except UnicodeDecodeError:
        raise BuildFailed("pyproject.toml or poetry.lock is not UTF-8 text.") from None


def read_version_files(build_dir: Path) -> dict[str, bytes]:
    """The contents of the files that may name a Python version, those that exist."""
    found = {name: read_app_file(build_dir, name, 8 * 1024 * 1024) for name in VERSION_FILES}
    return {name: data for name, data in found.items() if data is not None}


class PythonBuildpack:
    """Detected by a package manager's file, a Pipfile or pyproject.toml in the app root."""

    def __init__(
        self,
        python: str,
        uv_bin: str,
        search_path: str = "/usr/local/bin:/usr/bin:/bin",
        *,
        build_user: Callable[[], RunAs | None] = unprivileged,
        interpreter_dirs: Sequence[Path] = interpreters.SEARCH_DIRS,
        name: str = PYTHON,
        runtimes_dir: Path | None = None,
        runtime_roots: Sequence[Path] = (),
        jail: BuildJail | None = None,
    ) -> None:
        """`python` is the operator's Python, offered with the python3.N found in
        `interpreter_dirs` and the Pythons pyenv or uv installed in `runtime_roots`; those
        the build user cannot run are copied into `runtimes_dir` when an app asks for one.
        `build_user` says who runs uv, asked at each build: by default an unprivileged user
        when the platform is root, else the platform's own user (None). With a `jail`, every
        command runs in it."""
        self.python = python
        self.uv_bin = uv_bin
        self.search_path = search_path
        self.build_user = build_user
        self.interpreter_dirs = interpreter_dirs
        self.name = name
        self.runtimes_dir = runtimes_dir
        self.runtime_roots = runtime_roots
        self.jail = jail

    declares_defaults = False

    async def fetch(self) -> None:
        """Built in: nothing to fetch."""

    async def detect(self, build_dir: Path) -> str | None:
        found = any((build_dir / name).is_file() for name in PYTHON_FILES)
        return "Python" if found else None

    async def release(self, build_dir: Path) -> dict[str, str]:
        """No default process types: a Python app says how it starts in its Procfile."""
        return {}

    def env(self, dirs: CompileDirs) -> dict[str, str]:
        """Everything uv sees: nothing of the platform's own environment or secrets."""
        return {
            "PATH": self.search_path,
            "HOME": str(dirs.cache_dir),
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            "UV_CACHE_DIR": str(dirs.cache_dir / "uv"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_PROGRESS": "1",
            # The cache and the build are on different filesystems (the jail's /tmp): uv
            # copies, and says so on every build unless told to.
            "UV_LINK_MODE": "copy",
            # The machine's trust store, where operators put their proxies' CAs
            # (UV_NATIVE_TLS is the older spelling of the same switch).
            "UV_SYSTEM_CERTS": "1",
            "UV_NATIVE_TLS": "1",
        }

    async def compile(self, dirs: CompileDirs, out: BuildOutput) -> None:
        build_dir = dirs.build_dir
        manager = package_manager([n for n in PYTHON_FILES if (build_dir / n).is_file()])
        # Read before anything runs, so that a lock Kapal cannot install from fails at once.
        exported = None
        if manager == POETRY_LOCK:
            exported = await asyncio.to_thread(export_poetry_lock, build_dir)
        request = requested_version(await asyncio.to_thread(read_version_files, build_dir))
        run_as = await asyncio.to_thread(self.build_user)
        if run_as is not None and not run_as.may_execute(Path(self.uv_bin)):
            log.error("user %s cannot run %s", run_as.name, self.uv_bin)
            raise BuildFailed(f"{self.uv_bin} cannot be run by user {run_as.name}.")
        env = self.env(dirs)
        interpreter = await self._interpreter(request, env, out, run_as)
        await asyncio.to_thread(self._prepare, dirs, run_as)
        python = await self._install(dirs, manager, interpreter, env, out, run_as, exported)
        env["PATH"] = f"{Path(python).parent}:{self.search_path}"
        await collect_static(dirs, out, python=python, env=env, run_as=run_as, jail=self.jail)
        await asyncio.to_thread(
            place_file, build_dir, profile.DIRECTORY, profile.NAME, profile.SCRIPT
        )

    async def _interpreter(
        self, request: Request | None, env: dict[str, str], out: BuildOutput, run_as: RunAs | None
    ) -> str:
        """The interpreter that serves the app's request, announced; a Python installed by
        pyenv or uv that the build user cannot run is copied for it first. Without a request,
        the newest of the machine's own Pythons (python3.N, KAPAL_BUILD_PYTHON)."""
        copies_dir = [] if self.runtimes_dir is None else [self.runtimes_dir]
        copies, installed = await asyncio.to_thread(
            lambda: (runtimes.installations(copies_dir), runtimes.installations(self.runtime_roots))
        )
        extra = [install.executable for install in (*copies, *installed)]
        found = await interpreters.available(
            self.python, env, run_as, self.interpreter_dirs, extra, jail=self.jail
        )
        offered = {interpreter.version for interpreter in found}
        # Installed for a user the build user is not: offered, to be copied when chosen.
        copyable = {
            str(install.executable): install
            for install in installed
            if install.version not in offered and self.runtimes_dir is not None
        }
        options = [*found, *(Interpreter(p, i.version, i.full) for p, i in copyable.items())]
        if request is None:
            # The default does not change as copies come and go: the machine's own Pythons.
            system = [i for i in found if Path(i.path) not in extra]
            options = system or options
        choice = choose(request, options)
        out.step(choice.announcement)
        path = choice.interpreter.path
        install = copyable.get(path)
        if install is not None and self.runtimes_dir is not None:
            out.detail(f"Copying Python {choice.interpreter.full} from {install.origin} (once)")
            try:
                copied = await asyncio.to_thread(runtimes.provide, install, self.runtimes_dir)
            except runtimes.RuntimeUnavailable as exc:
                raise BuildFailed(exc.args[0]) from None
            if await interpreters.version_of(copied, env, run_as, self.jail) is None:
                await asyncio.to_thread(runtimes.discard, install, self.runtimes_dir)
                raise BuildFailed(
                    f"The copy of Python {choice.interpreter.full} does not run (see Kapal's log)."
                )
            path = str(copied)
        out.detail(f"Python {choice.interpreter.full} ({path})")
        return path

    async def _export_pipfile_lock(
        self, dirs: CompileDirs, interpreter: str, env: dict[str, str], run_as: RunAs | None
    ) -> str:
        """Pipfile.lock's default packages as a hashed requirements file in the cache; its
        path."""
        argv = [self.uv_bin, "tool", "run", "--python", interpreter, "--from", PIPENV]
        status, stdout, stderr = await query(
            [*argv, "pipenv", "requirements", "--hash"],
            env={**env, "PIPENV_VERBOSITY": "-1"},
            timeout=None,
            cwd=dirs.build_dir,
            run_as=run_as,
            jail=self.jail,
        )
        if status != 0:
            raise BuildFailed(f"Could not read Pipfile.lock: {last_words(stderr)}")
        return await self._place_exported(dirs, PIPENV_LOCK, stdout)

    async def _place_exported(self, dirs: CompileDirs, manager: str, text: str) -> str:
        """Hashed requirements exported from `manager`'s lock, put in the cache; their path."""
        await asyncio.to_thread(place_file, dirs.cache_dir, "kapal", EXPORTED[manager], text)
        return str(dirs.cache_dir / "kapal" / EXPORTED[manager])

    def _prepare(self, dirs: CompileDirs, run_as: RunAs | None) -> None:
        """No virtualenv from the repository; the cache exists; with a build user, it and the
        build directory are its own."""
        venv = dirs.build_dir / VENV
        if venv.is_symlink() or venv.is_file():
            venv.unlink()
        elif venv.exists():
            shutil.rmtree(venv)  # a committed virtualenv would not run here anyway
        dirs.cache_dir.mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            hand_over(run_as, dirs.build_dir, dirs.cache_dir)

    async def _install(
        self,
        dirs: CompileDirs,
        manager: str,
        interpreter: str,
        env: dict[str, str],
        out: BuildOutput,
        run_as: RunAs | None,
        exported: str | None = None,
    ) -> str:
        """Create the virtualenv with `interpreter` and install the dependencies `manager`
        (requirements.txt, Pipfile.lock, poetry.lock or uv.lock) names into it; the
        virtualenv's python. `exported`: poetry.lock's packages as hashed requirements."""
        uv_version = await capture(
            [self.uv_bin, "--version"], env=env, cwd=dirs.build_dir, run_as=run_as, jail=self.jail
        )
        out.step(f"Installing dependencies with uv {''.join(uv_version.split()[1:2]) or '?'}")
        venv = dirs.build_dir / VENV
        python = str(venv / "bin" / "python")
        create = [self.uv_bin, "venv", "--quiet", "--relocatable", "--clear"]
        steps: list[tuple[list[str], str]] = [
            ([*create, "--python", interpreter, str(venv)], "Could not create the virtualenv")
        ]
        if manager == UV_LOCK:
            env["UV_PROJECT_ENVIRONMENT"] = str(venv)
            sync = ["sync", "--locked", "--no-default-groups", "--no-editable"]
            steps.append(
                (
                    [self.uv_bin, *sync, "--python", python],
                    "Could not install the dependencies in uv.lock",
                )
            )
        else:
            requirements = REQUIREMENTS
            if manager == PIPENV_LOCK:
                requirements = await self._export_pipfile_lock(dirs, interpreter, env, run_as)
            elif exported is not None:  # poetry.lock, read before anything ran
                requirements = await self._place_exported(dirs, POETRY_LOCK, exported)
            steps.append(
                (
                    [self.uv_bin, "pip", "install", "--python", python, "-r", requirements],
                    f"Could not install the dependencies in {manager}",
                )
            )
        uv_cache = dirs.cache_dir / "uv"

        async def install() -> None:
            for argv, failure in steps:
                status = await run_step(
                    argv, cwd=dirs.build_dir, env=env, out=out, run_as=run_as, jail=self.jail
                )
                if status != 0:
                    raise BuildFailed(f"{failure} (uv exited with status {status}).")

        if not await asyncio.to_thread(_has_files, uv_cache):
            await install()
            return python
        try:
            await install()
        except BuildFailed:
            # A cache must never be why a build fails: one more try with an empty one, which
            # replaces the old only if it helped (a real mistake keeps the warm cache).
            out.step("Trying again with an empty build cache, in case the cache is why")
            fresh = dirs.cache_dir / "uv.fresh"
            await asyncio.to_thread(shutil.rmtree, fresh, True)
            env["UV_CACHE_DIR"] = str(fresh)
            try:
                await install()
            except BuildFailed:
                await asyncio.to_thread(shutil.rmtree, fresh, True)
                raise
            await asyncio.to_thread(_replace_dir, fresh, uv_cache)
        return python
