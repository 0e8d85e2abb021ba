"""How a dyno's process tree is started and signalled. `PlainDriver` runs it as a plain child
process group, as an unprivileged user when the agent is root; sandbox drivers (bubblewrap,
unshare) implement the same protocol."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kapal.domain.formation import SizeLimits, size_limits
from kapal.domain.rendezvous import Size
from kapal.runtime import terminal
from kapal.runtime.pipes import PipeReader, open_pipe
from kapal.system_users import RunAs, with_umask

logger = logging.getLogger(__name__)

Process = asyncio.subprocess.Process

# Dynos share the machine's /tmp: what they write there is for their own user only.
DYNO_UMASK = 0o077


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    app_id: str
    dyno: str  # web.1, release.3, run.4821
    size: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    stdin: bool = False  # a pipe (attached one-offs), else /dev/null
    merge_stderr: bool = False  # stderr into stdout (attached one-offs: one stream, no TTY)
    # A terminal of (rows, columns) as stdin, stdout and stderr instead (`kapal run bash`);
    # process.stdin and process.stdout are then its master end, and stdin/merge_stderr unused.
    tty: Size | None = None
    uid: int | None = None  # the app's own uid, where the driver runs dynos as it


class Driver(Protocol):
    async def spawn(self, spec: LaunchSpec) -> Process:
        """Start the dyno; stdout (and stderr unless merged) are pipes."""
        ...

    def signal(self, process: Process, sig: int) -> None:
        """Send `sig` to every process of the dyno."""
        ...

    def running(self, process: Process) -> bool:
        """Whether any process of the dyno is still alive (its main process may be gone)."""
        ...

    def home(self, release_dir: Path) -> Path:
        """Where a dyno sees its release's unpacked slug: its HOME and working directory."""
        ...

    def memory(self, process: Process) -> tuple[int, int] | None:
        """(bytes the dyno uses, processes the kernel killed for memory); None if unknown."""
        ...

    def finished(self, process: Process) -> None:
        """The dyno's main process was reaped: release what the driver held for it."""
        ...

    def limits(self, size: str) -> SizeLimits:
        """What a dyno of `size` may use."""
        ...

    def close(self) -> None:
        """The agent is done: remove what the driver made on the machine (no dyno runs)."""
        ...


class PlainDriver:
    """The dyno is a process group of its own (start_new_session), stopped as a group.

    With `run_as` (the agent is root), every dyno runs as that user, with no supplementary
    groups and rlimits; without it, dynos run as the agent's own user."""

    name = "none"

    def __init__(
        self, run_as: RunAs | None = None, memory_mb: dict[str, int] | None = None
    ) -> None:
        self.run_as = run_as
        self.memory_mb = memory_mb or {}

    def limits(self, size: str) -> SizeLimits:
        return size_limits(size, self.memory_mb)

    async def spawn(self, spec: LaunchSpec) -> Process:
        options = self.run_as.spawn_options(DYNO_UMASK) if self.run_as else with_umask(DYNO_UMASK)
        return await start(spec, spec.argv, spec.cwd, options["preexec_fn"])

    def signal(self, process: Process, sig: int) -> None:
        signal_session(process.pid, sig)

    def running(self, process: Process) -> bool:
        return session_running(process.pid)

    def home(self, release_dir: Path) -> Path:
        return release_dir

    def memory(self, process: Process) -> tuple[int, int] | None:
        return None

    def finished(self, process: Process) -> None:
        pass

    def close(self) -> None:
        pass


async def start(
    spec: LaunchSpec,
    argv: list[str],
    cwd: Path,
    preexec: Callable[[], None],
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Process:
    """Start `argv` (the dyno's command, or a sandbox wrapping it) with the dyno's stdio, in a
    session of its own; `preexec` runs in the child before exec. `env` (default: the dyno's)
    is what exec gets, `pass_fds` descriptors the child keeps. Every driver starts dynos
    through this one function."""
    env = spec.env if env is None else env
    if spec.tty is not None:
        return await terminal.start(
            argv, cwd=cwd, env=env, size=spec.tty, preexec=preexec, pass_fds=pass_fds
        )
    # Output through pipes of our own (kapal.runtime.pipes); the child gets their write ends.
    readers: list[PipeReader] = []
    ends: list[int] = []
    try:
        for _ in range(1 if spec.merge_stderr else 2):
            reader, end = await open_pipe()
            readers.append(reader)
            ends.append(end)
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            pass_fds=pass_fds,
            stdin=asyncio.subprocess.PIPE if spec.stdin else asyncio.subprocess.DEVNULL,
            stdout=ends[0],
            stderr=ends[-1],
            start_new_session=True,
            close_fds=True,
            preexec_fn=preexec,
        )
    except BaseException:
        for reader in readers:
            reader.close()
        raise
    finally:
        for end in ends:  # the child has them; kept, the pipes would never end
            os.close(end)
    process.stdout = readers[0]
    process.stderr = readers[1] if len(readers) > 1 else None
    return process


def signal_session(pid: int, sig: int) -> None:
    """Signal the process group a dyno's session leader `pid` made; the group outlives its
    leader, so members still get the signal after the leader exits."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def session_running(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
