"""Build subprocesses: output relayed line by line into the build log, killed as a group.

Steps that run the app's code (uv running an sdist's setup.py) run as an unprivileged user
when given one; the platform reads their output and writes the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kapal.build.output import BuildOutput, decode_line, split_lines
from kapal.system_users import RunAs, with_umask

# Explicit, so a slug's file modes do not depend on the umask the platform runs with.
BUILD_UMASK = 0o022
# Builds yield the CPU to running apps.
BUILD_NICE = 10


class BuildFailed(Exception):
    """The build cannot go on; `message` is shown to the pusher after ` !     `."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _as(run_as: RunAs | None) -> dict[str, Any]:
    """Spawn options for a build process: niced, then as `run_as` (or only the umask)."""
    options = run_as.spawn_options(BUILD_UMASK) if run_as else with_umask(BUILD_UMASK)
    then = options["preexec_fn"]

    def start() -> None:
        os.nice(BUILD_NICE)
        then()

    return {**options, "preexec_fn": start}


async def run_step(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    out: BuildOutput,
    timeout: float,
    run_as: RunAs | None = None,
    indent: bool = True,
) -> int:
    """Run one command, its merged stdout/stderr relayed into the log (indented as detail
    lines, or as they are: a classic buildpack formats its own); its exit status."""
    emit = out.detail if indent else out.line
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # so a timeout or cancel stops its children too
        **_as(run_as),
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            pending = b""
            while chunk := await proc.stdout.read(65536):
                lines, pending = split_lines(pending, chunk)
                for line in lines:
                    emit(line)
            if pending:
                emit(decode_line(pending))
            return await proc.wait()
    except TimeoutError:
        raise BuildFailed(f"{argv[0]} did not finish within {timeout:.0f} seconds.") from None
    finally:
        # Also after a normal exit: nothing a step started in the background outlives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()


async def capture(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float = 30,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
) -> str:
    """The stdout of a short query command (`uv --version`); failure is a BuildFailed."""
    status, stdout, stderr = await query(argv, env=env, timeout=timeout, cwd=cwd, run_as=run_as)
    if status != 0:
        reason = stderr.strip().splitlines()[-1:] or ["no output"]
        raise BuildFailed(f"{argv[0]} failed: {reason[0]}")
    return stdout.strip()


async def query(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float = 30,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
) -> tuple[int, str, str]:
    """Run a short command; its exit status, stdout and stderr. Not finishing within
    `timeout` is a BuildFailed."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        **_as(run_as),
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate()
    except TimeoutError:
        raise BuildFailed(f"{argv[0]} did not answer within {timeout:.0f} seconds.") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")
