"""The Python buildpack: a relocatable virtualenv at .venv, dependencies installed by uv with
an interpreter this machine has, then Django's collectstatic and the runtime defaults.

uv runs the app's code (an sdist's setup.py), and collectstatic runs it too, so when the
platform is root they run as the unprivileged build user, which is given the build directory
and the app's cache first. The interpreters offered are those that user can run.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from kapal.build.buildpack import CompileDirs
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed, capture, run_step
from kapal.build.python import interpreters, profile
from kapal.build.python.django import collect_static
from kapal.build.python.versions import VERSION_FILES, choose, requested_version
from kapal.build.workspace import hand_over, place_file
from kapal.domain.buildpacks import PYTHON
from kapal.system_users import RunAs, unprivileged

log = logging.getLogger(__name__)

STEP_TIMEOUT = 15 * 60.0
VENV = ".venv"
REQUIREMENTS = "requirements.txt"
# Each package manager's file; Python apps are recognised by any of them.
PACKAGE_MANAGER_FILES = (REQUIREMENTS, "Pipfile.lock", "poetry.lock", "uv.lock")
EXPORT_HINTS = {
    "Pipfile.lock": "HINT: `pipenv requirements > requirements.txt`, then remove Pipfile.lock.",
    "poetry.lock": "HINT: `poetry export -o requirements.txt` (poetry-plugin-export), then "
    "remove poetry.lock.",
    "uv.lock": "HINT: `uv export --no-emit-project -o requirements.txt`, then remove uv.lock.",
}


def check_package_manager(found: Sequence[str]) -> None:
    """Exactly one package manager's file, and for now it must be requirements.txt."""
    if len(found) > 1:
        raise BuildFailed(
            f"Multiple Python package manager files were found: {', '.join(found)}.",
            hint="HINT: keep requirements.txt, the one Kapal installs from, and remove the others.",
        )
    if not found:
        raise BuildFailed(f"No {REQUIREMENTS} was found in the root of the app.")
    if list(found) != [REQUIREMENTS]:
        (name,) = found
        raise BuildFailed(
            f"{name} was found, but Kapal installs Python dependencies only from "
            "requirements.txt for now.",
            hint=EXPORT_HINTS.get(name, ""),
        )


def read_version_files(build_dir: Path) -> dict[str, bytes]:
    """The contents of the files that may name a Python version, those that exist."""
    return {
        name: (build_dir / name).read_bytes()
        for name in VERSION_FILES
        if (build_dir / name).is_file()
    }


class PythonBuildpack:
    """Detected by a package manager's file in the app root (only requirements.txt builds)."""

    def __init__(
        self,
        python: str,
        uv_bin: str,
        search_path: str = "/usr/local/bin:/usr/bin:/bin",
        *,
        build_user: Callable[[], RunAs | None] = unprivileged,
        interpreter_dirs: Sequence[Path] = interpreters.SEARCH_DIRS,
        name: str = PYTHON,
    ) -> None:
        """`python` is the operator's Python, offered with the python3.N found in
        `interpreter_dirs`. `build_user` says who runs uv, asked at each build: by default
        an unprivileged user when the platform is root, else the platform's own user (None)."""
        self.python = python
        self.uv_bin = uv_bin
        self.search_path = search_path
        self.build_user = build_user
        self.interpreter_dirs = interpreter_dirs
        self.name = name

    declares_defaults = False

    async def fetch(self) -> None:
        """Built in: nothing to fetch."""

    async def detect(self, build_dir: Path) -> str | None:
        found = any((build_dir / name).is_file() for name in PACKAGE_MANAGER_FILES)
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
            # The machine's trust store, where operators put their proxies' CAs
            # (UV_NATIVE_TLS is the older spelling of the same switch).
            "UV_SYSTEM_CERTS": "1",
            "UV_NATIVE_TLS": "1",
        }

    async def compile(self, dirs: CompileDirs, out: BuildOutput) -> None:
        build_dir = dirs.build_dir
        check_package_manager([n for n in PACKAGE_MANAGER_FILES if (build_dir / n).is_file()])
        request = requested_version(await asyncio.to_thread(read_version_files, build_dir))
        run_as = await asyncio.to_thread(self.build_user)
        if run_as is not None and not run_as.may_execute(Path(self.uv_bin)):
            log.error("user %s cannot run %s", run_as.name, self.uv_bin)
            raise BuildFailed(f"{self.uv_bin} cannot be run by user {run_as.name}.")
        env = self.env(dirs)
        found = await interpreters.available(self.python, env, run_as, self.interpreter_dirs)
        choice = choose(request, found)
        out.step(choice.announcement)
        out.detail(f"Python {choice.interpreter.full} ({choice.interpreter.path})")
        await asyncio.to_thread(self._prepare, dirs, run_as)
        python = await self._install(dirs, choice.interpreter.path, env, out, run_as)
        env["PATH"] = f"{Path(python).parent}:{self.search_path}"
        await collect_static(dirs, out, python=python, env=env, timeout=STEP_TIMEOUT, run_as=run_as)
        await asyncio.to_thread(
            place_file, build_dir, profile.DIRECTORY, profile.NAME, profile.SCRIPT
        )

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
        interpreter: str,
        env: dict[str, str],
        out: BuildOutput,
        run_as: RunAs | None,
    ) -> str:
        """Create the virtualenv with `interpreter` and install requirements.txt into it; the
        virtualenv's python."""
        uv_version = await capture(
            [self.uv_bin, "--version"], env=env, cwd=dirs.build_dir, run_as=run_as
        )
        out.step(f"Installing dependencies with uv {''.join(uv_version.split()[1:2]) or '?'}")
        venv = dirs.build_dir / VENV
        python = str(venv / "bin" / "python")
        steps = (
            (
                [
                    self.uv_bin,
                    "venv",
                    "--quiet",
                    "--relocatable",
                    "--python",
                    interpreter,
                    str(venv),
                ],
                "Could not create the virtualenv",
            ),
            (
                [self.uv_bin, "pip", "install", "--python", python, "-r", REQUIREMENTS],
                "Could not install the dependencies in requirements.txt",
            ),
        )
        for argv, failure in steps:
            status = await run_step(
                argv, cwd=dirs.build_dir, env=env, out=out, timeout=STEP_TIMEOUT, run_as=run_as
            )
            if status != 0:
                raise BuildFailed(f"{failure} (uv exited with status {status}).")
        return python
