"""The Python buildpack: a relocatable virtualenv at .venv, dependencies installed by uv."""

from __future__ import annotations

import shutil
from pathlib import Path

from kapal.build.buildpack import CompileDirs
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed, capture, run_step

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

    def __init__(self, python: str, uv_bin: str, search_path: str = "/usr/local/bin:/usr/bin:/bin"):
        self.python = python
        self.uv_bin = uv_bin
        self.search_path = search_path

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
        dirs.cache_dir.mkdir(parents=True, exist_ok=True)
        venv = dirs.build_dir / ".venv"
        if venv.is_symlink() or venv.is_file():
            venv.unlink()
        elif venv.exists():
            shutil.rmtree(venv)  # a committed virtualenv would not run here anyway

        version = await capture(
            [self.python, "-c", "import platform; print(platform.python_version())"], env=env
        )
        out.step(f"Using Python {version}")
        uv_version = (await capture([self.uv_bin, "--version"], env=env)).split()[1:2]
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
                argv, cwd=dirs.build_dir, env=env, out=out, timeout=STEP_TIMEOUT
            )
            if status != 0:
                raise BuildFailed(f"{failure} (uv exited with status {status}).")

        profile = dirs.build_dir / ".profile.d"
        profile.mkdir(exist_ok=True)
        (profile / "python.sh").write_text(PROFILE_SCRIPT)
