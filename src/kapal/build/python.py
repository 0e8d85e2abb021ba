"""The Python buildpack: a relocatable virtualenv at .venv, dependencies installed by uv.

uv runs the app's code (an sdist's setup.py), so when the platform is root it runs as the
unprivileged build user, which is given the build directory and the app's cache first.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from kapal.build.buildpack import CompileDirs
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed, capture, run_step
from kapal.build.workspace import hand_over, place_file
from kapal.system_users import RunAs, unprivileged

log = logging.getLogger(__name__)

# Sourced by the dyno before its command (HOME is the slug root there).
PROFILE_SCRIPT = """\
# Written by Kapal's Python buildpack.
export PATH="$HOME/.venv/bin:$PATH"
export PYTHONUNBUFFERED="${PYTHONUNBUFFERED:-true}"
export LANG="${LANG:-C.UTF-8}"
"""

STEP_TIMEOUT = 15 * 60.0


class PythonBuildpack:
    """Detected by requirements.txt in the app root."""

    language = "Python"

    def __init__(
        self,
        python: str,
        uv_bin: str,
        search_path: str = "/usr/local/bin:/usr/bin:/bin",
        *,
        build_user: Callable[[], RunAs | None] = unprivileged,
    ) -> None:
        """`build_user` says who runs uv, asked at each build: by default an unprivileged
        user when the platform is root, else the platform's own user (None)."""
        self.python = python
        self.uv_bin = uv_bin
        self.search_path = search_path
        self.build_user = build_user

    def detect(self, build_dir: Path) -> bool:
        return (build_dir / "requirements.txt").is_file()

    def env(self, dirs: CompileDirs) -> dict[str, str]:
        """Everything uv sees: nothing of the platform's own environment or secrets."""
        return {
            "PATH": self.search_path,
            "HOME": str(dirs.cache_dir),
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
            "UV_CACHE_DIR": str(dirs.cache_dir / "uv"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_PROGRESS": "1",
            # The machine's trust store, where operators put their proxies' CAs
            # (UV_NATIVE_TLS is the older spelling of the same switch).
            "UV_SYSTEM_CERTS": "1",
            "UV_NATIVE_TLS": "1",
        }

    async def compile(self, dirs: CompileDirs, out: BuildOutput) -> None:
        env = self.env(dirs)
        venv = dirs.build_dir / ".venv"
        if venv.is_symlink() or venv.is_file():
            venv.unlink()
        elif venv.exists():
            shutil.rmtree(venv)  # a committed virtualenv would not run here anyway
        run_as = await asyncio.to_thread(self.build_user)
        await asyncio.to_thread(self._prepare, dirs, run_as)

        def query(argv: list[str]) -> Awaitable[str]:
            return capture(argv, env=env, cwd=dirs.build_dir, run_as=run_as)

        version = await query(
            [self.python, "-c", "import platform; print(platform.python_version())"]
        )
        out.step(f"Using Python {version}")
        uv_version = (await query([self.uv_bin, "--version"])).split()[1:2]
        out.step(f"Installing dependencies with uv {''.join(uv_version) or 'unknown'}")
        python = str(venv / "bin" / "python")
        steps = (
            (
                [
                    self.uv_bin,
                    "venv",
                    "--quiet",
                    "--relocatable",
                    "--python",
                    self.python,
                    str(venv),
                ],
                "Could not create the virtualenv",
            ),
            (
                [self.uv_bin, "pip", "install", "--python", python, "-r", "requirements.txt"],
                "Could not install the dependencies in requirements.txt",
            ),
        )
        for argv, failure in steps:
            status = await run_step(
                argv, cwd=dirs.build_dir, env=env, out=out, timeout=STEP_TIMEOUT, run_as=run_as
            )
            if status != 0:
                raise BuildFailed(f"{failure} (uv exited with status {status}).")
        await asyncio.to_thread(
            place_file, dirs.build_dir, ".profile.d", "python.sh", PROFILE_SCRIPT
        )

    def _prepare(self, dirs: CompileDirs, run_as: RunAs | None) -> None:
        """The cache exists; with a build user, it and the build directory are its own."""
        dirs.cache_dir.mkdir(parents=True, exist_ok=True)
        if run_as is None:
            return
        for program in (self.python, self.uv_bin):
            if not run_as.may_execute(Path(program)):
                log.error("user %s cannot run %s", run_as.name, program)
                raise BuildFailed(f"{program} cannot be run by user {run_as.name}.")
        hand_over(run_as, dirs.build_dir, dirs.cache_dir)
