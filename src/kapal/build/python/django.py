"""Django's collectstatic, run at build time the way Heroku's Python buildpack does: when
Django is installed and a manage.py is near the app root, unless DISABLE_COLLECTSTATIC."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from kapal.build.buildpack import CompileDirs
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed, capture, run_step
from kapal.sandbox.build_jail import BuildJail
from kapal.system_users import RunAs

MANAGE_PY = "manage.py"
MANAGE_PY_DEPTH = 3  # manage.py, a/manage.py or a/b/manage.py, like `find -maxdepth 3`
DISABLE = "DISABLE_COLLECTSTATIC"
HAS_DJANGO = "import importlib.util; print(importlib.util.find_spec('django') is not None)"
# Config vars that would break the build's own Python or toolchain if exported into the
# command (the classic buildpack API's export helper leaves out the same ones).
NOT_EXPORTED = frozenset(
    {
        "PATH",
        "HOME",
        "GIT_DIR",
        "CPATH",
        "CPPATH",
        "LD_PRELOAD",
        "LIBRARY_PATH",
        "LD_LIBRARY_PATH",
        "PYTHONHOME",
    }
)
FAILURE_HINT = (
    "See the output above for the cause. To deploy without collecting static files\n"
    "at build time, disable this step:\n"
    f"$ kapal config:set {DISABLE}=1"
)


def disabled(config_vars: Mapping[str, str]) -> bool:
    """DISABLE_COLLECTSTATIC set to anything but empty or 0 (Heroku's reading of it)."""
    return config_vars.get(DISABLE, "").strip() not in ("", "0")


def find_manage_py(build_dir: Path, depth: int = MANAGE_PY_DEPTH) -> str | None:
    """The manage.py nearest the app root (then first by name) within `depth` levels, as a
    relative path; hidden directories (.venv) and links are not looked into."""
    level = [build_dir]
    for _ in range(depth):
        below: list[Path] = []
        for directory in level:
            try:
                entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
            except OSError:
                continue
            for entry in entries:
                if entry.name == MANAGE_PY and entry.is_file(follow_symlinks=False):
                    return Path(entry.path).relative_to(build_dir).as_posix()
            below += [
                Path(entry.path)
                for entry in entries
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
            ]
        level = below
    return None


def command_env(base: Mapping[str, str], config_vars: Mapping[str, str]) -> dict[str, str]:
    """The build's environment with the app's config vars, as the app's settings need them."""
    env = dict(base)
    env.update((k, v) for k, v in config_vars.items() if k not in NOT_EXPORTED)
    # Bytecode written now would be stale in the slug (whose files all get one old mtime)
    # and compiled again at run time anyway.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


async def collect_static(
    dirs: CompileDirs,
    out: BuildOutput,
    *,
    python: str,
    env: Mapping[str, str],
    run_as: RunAs | None,
    jail: BuildJail | None = None,
) -> None:
    """Run `manage.py collectstatic --noinput` with the virtualenv's `python` if it applies;
    its failure fails the build."""
    env = command_env(env, dirs.config_vars)
    answer = await capture(
        [python, "-c", HAS_DJANGO], env=env, cwd=dirs.build_dir, run_as=run_as, jail=jail
    )
    if answer.splitlines()[-1:] != ["True"]:
        return
    if disabled(dirs.config_vars):
        out.step(f"Skipping Django collectstatic since the config var {DISABLE} is set.")
        return
    manage = await asyncio.to_thread(find_manage_py, dirs.build_dir)
    if manage is None:
        out.step("Skipping Django collectstatic since no manage.py file was found.")
        return
    shown = f"$ python {manage} collectstatic --noinput"
    out.step(shown)
    status = await run_step(
        [python, manage, "collectstatic", "--noinput"],
        cwd=dirs.build_dir,
        env=env,
        out=out,
        run_as=run_as,
        jail=jail,
    )
    if status != 0:
        raise BuildFailed(f"Error while running '{shown}'.", hint=FAILURE_HINT)
