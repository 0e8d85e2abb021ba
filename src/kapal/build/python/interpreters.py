"""The Pythons this machine offers apps: `python3.N` in the usual places and the operator's
KAPAL_BUILD_PYTHON, kept only if the user that builds and runs the app can run them.

Interpreters are used in place (the slug's virtualenv links to them), so one the dyno's user
cannot run, like a Python under /root, is no use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from kapal.build.process import BuildFailed, capture
from kapal.build.python.versions import Interpreter
from kapal.sandbox.build_jail import BuildJail
from kapal.system_users import RunAs

log = logging.getLogger(__name__)

SEARCH_DIRS = (Path("/usr/local/bin"), Path("/usr/bin"))
NAME = re.compile(r"python3\.\d+")
QUERY = "import platform, sys; print('%d.%d.%d' % sys.version_info[:3], platform.python_version())"


def candidates(configured: str, dirs: Sequence[Path], extra: Sequence[Path] = ()) -> list[Path]:
    """The configured Python, then each python3.N in `dirs`, then `extra`; one path per real
    file."""
    paths = [Path(configured)]
    for directory in dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        paths += [directory / name for name in names if NAME.fullmatch(name)]
    paths += extra
    seen: set[str] = set()
    unique = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique


def runnable(paths: Sequence[Path], run_as: RunAs | None) -> list[Path]:
    """Those `run_as` (or, without one, this process) may execute."""
    if run_as is None:
        return [path for path in paths if path.is_file() and os.access(path, os.X_OK)]
    return [path for path in paths if run_as.may_execute(path)]


async def version_of(
    path: Path, env: Mapping[str, str], run_as: RunAs | None, jail: BuildJail | None = None
) -> Interpreter | None:
    """Its version, asked in the build's `jail` if any: one the jail does not show (nor, so,
    the dynos') does not answer."""
    try:
        answer = await capture(
            [str(path), "-I", "-c", QUERY], env=env, cwd=Path("/"), run_as=run_as, jail=jail
        )
        numbers, full = answer.split()
        major, minor, micro = (int(part) for part in numbers.split("."))
    except (BuildFailed, OSError, ValueError) as exc:
        log.warning("skipping Python %s, which does not answer with its version: %s", path, exc)
        return None
    return Interpreter(str(path), (major, minor, micro), full)


async def available(
    configured: str,
    env: Mapping[str, str],
    run_as: RunAs | None,
    dirs: Sequence[Path] = SEARCH_DIRS,
    extra: Sequence[Path] = (),
    *,
    jail: BuildJail | None = None,
) -> list[Interpreter]:
    """The interpreters `run_as` can run, with their versions, the configured one first."""
    paths = await asyncio.to_thread(lambda: runnable(candidates(configured, dirs, extra), run_as))
    if Path(configured) not in paths:
        user = run_as.name if run_as else "this process"
        log.warning("the configured Python %s cannot be run by %s: not offered", configured, user)
    found = await asyncio.gather(*(version_of(path, env, run_as, jail) for path in paths))
    return [interpreter for interpreter in found if interpreter is not None]
