"""Build subprocesses: output relayed line by line into the build log, killed as a group.

Steps that run the app's code (uv running an sdist's setup.py) run as an unprivileged user
when given one, and in the build's jail (kapal.sandbox.build_jail) when given one; the
platform reads their output and writes the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kapal.build.output import BuildOutput, decode_line, split_lines
from kapal.sandbox.build_jail import BuildJail
from kapal.system_users import RunAs, with_umask

# Explicit, so a slug's file modes do not depend on the umask the platform runs with.
BUILD_UMASK = 0o022
# Builds yield the CPU to running apps.
BUILD_NICE = 10
CHUNK = 65536
QUERY_LIMIT = 1024 * 1024  # what a short command may print, held in the API's memory
DRAIN = 1.0  # output still read after a process exits


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


@dataclass
class _Spawned:
    """A build process and the readers of its output: stdout, and stderr unless merged."""

    proc: asyncio.subprocess.Process
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader | None


@contextlib.asynccontextmanager
async def _spawned(
    argv: Sequence[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    run_as: RunAs | None,
    merge_stderr: bool,
    jail: BuildJail | None = None,
) -> AsyncIterator[_Spawned]:
    """A build process in a session of its own, killed with everything it started in that
    session when the block ends, however it ends (a daemon that leaves the session is the
    build cgroup's to stop). Its output comes through pipes of our own, which are closed at
    the end even if a daemon still holds their other ends. With a `jail`, it runs in there
    (as `run_as`, which bubblewrap maps to itself), `cwd` and the paths in `argv` and `env`
    seen from inside."""
    if jail is not None:
        argv, env = jail.wrap(argv, env, cwd)
        cwd = Path("/")
    loop = asyncio.get_running_loop()
    readers: list[asyncio.StreamReader] = []
    transports: list[asyncio.BaseTransport] = []
    ends: list[int] = []
    # uvloop's transport closes the descriptor itself (libuv), then the file object: one that
    # closed it too would close a number another thread may just have been given (read_app_file
    # failed so, with EBADF). asyncio's own loop closes it only through the file object.
    closefd = isinstance(loop, asyncio.BaseEventLoop)
    try:
        for _ in range(1 if merge_stderr else 2):
            read_end, write_end = os.pipe()
            ends.append(write_end)
            reader = asyncio.StreamReader()
            transport, _ = await loop.connect_read_pipe(
                functools.partial(asyncio.StreamReaderProtocol, reader),
                os.fdopen(read_end, "rb", 0, closefd=closefd),
            )
            readers.append(reader)
            transports.append(transport)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=ends[0],
            stderr=ends[-1],
            start_new_session=True,
            **_as(run_as),
        )
        for end in ends:
            os.close(end)
        ends.clear()
        try:
            yield _Spawned(proc, readers[0], None if merge_stderr else readers[1])
        finally:
            _kill_session(proc)
            await proc.wait()
    finally:
        for end in ends:
            os.close(end)
        for opened in transports:
            opened.close()


async def run_step(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    out: BuildOutput,
    timeout: float | None = None,
    run_as: RunAs | None = None,
    indent: bool = True,
    jail: BuildJail | None = None,
) -> int:
    """Run one command, its merged stdout/stderr relayed into the log (indented as detail
    lines, or as they are: a classic buildpack formats its own); its exit status. Without a
    `timeout` of its own, the build's limit applies."""
    emit = out.detail if indent else out.line

    async def relay(stream: asyncio.StreamReader) -> None:
        pending = b""
        try:
            while chunk := await stream.read(CHUNK):
                lines, pending = split_lines(pending, chunk)
                for line in lines:
                    emit(line)
        finally:
            if pending:
                emit(decode_line(pending))

    spawned = _spawned(argv, cwd=cwd, env=env, run_as=run_as, merge_stderr=True, jail=jail)
    async with spawned as step:
        try:
            async with asyncio.timeout(timeout):
                return await _outcome(step.proc, relay(step.stdout))
        except TimeoutError:
            raise BuildFailed(f"{argv[0]} did not finish within {timeout:.0f} seconds.") from None


async def capture(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float = 30,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
    jail: BuildJail | None = None,
) -> str:
    """The stdout of a short query command (`uv --version`); failure is a BuildFailed."""
    status, stdout, stderr = await query(
        argv, env=env, timeout=timeout, cwd=cwd, run_as=run_as, jail=jail
    )
    if status != 0:
        raise BuildFailed(f"{argv[0]} failed: {last_words(stderr)}")
    return stdout.strip()


async def query(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float | None = 30,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
    limit: int = QUERY_LIMIT,
    jail: BuildJail | None = None,
) -> tuple[int, str, str]:
    """Run a short command; its exit status, stdout and stderr. Not finishing within
    `timeout`, or printing more than `limit` bytes on either, is a BuildFailed."""
    stdout, stderr = bytearray(), bytearray()

    async def read(stream: asyncio.StreamReader, into: bytearray) -> None:
        # Read to the end even past the limit (the process is stopped then): a pipe left
        # unread would keep the process from being reaped.
        while chunk := await stream.read(CHUNK):
            if len(into) <= limit:
                into += chunk
            if len(into) > limit:
                _kill_session(proc)
        if len(into) > limit:
            raise BuildFailed(f"{argv[0]} printed more than {limit // 1024} KB: stopped.")

    spawned = _spawned(argv, cwd=cwd, env=env, run_as=run_as, merge_stderr=False, jail=jail)
    async with spawned as step:
        assert step.stderr is not None
        proc = step.proc
        try:
            async with asyncio.timeout(timeout):
                status = await _outcome(proc, read(step.stdout, stdout), read(step.stderr, stderr))
        except TimeoutError:
            raise BuildFailed(f"{argv[0]} did not answer within {timeout:.0f} seconds.") from None
    return status, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")


async def _outcome(proc: asyncio.subprocess.Process, *readers: Awaitable[None]) -> int:
    """The process's exit status, its output read meanwhile by `readers` (whose failure
    stops it). Once it has exited, what it left in its session is killed and the rest of its
    output read for at most DRAIN seconds: a daemon that left the session may hold the
    pipes open."""
    reading: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*readers))
    exiting: asyncio.Future[Any] = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait({reading, exiting}, return_when=asyncio.FIRST_COMPLETED)
        if not reading.done():
            _kill_session(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reading), DRAIN)
        if reading.done():
            reading.result()  # a reader's failure is the step's
        return int(await exiting)
    finally:
        reading.cancel()
        exiting.cancel()


def _kill_session(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def last_words(stderr: str) -> str:
    """The line of a failed command's stderr that says why: a `fatal:`, `error:` or `cp:`
    line (git's, uv's, cp's own words), else the last one."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = [line for line in lines if line.startswith(("fatal:", "cp:", "error:"))]
    return (said or lines or ["(no output)"])[0 if said else -1]
