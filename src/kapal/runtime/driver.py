"""How a dyno's process tree is started and signalled. `PlainDriver` runs it as a plain child
process group, as an unprivileged user when the agent is root; sandbox drivers (bubblewrap,
unshare) implement the same protocol."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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

    def kill_leftovers(self, pids: Collection[int]) -> int:
        """SIGKILL dynos an earlier agent run started (their recorded pids); returns how many
        processes were killed. Must only touch processes that are recognisably dynos."""
        ...


class PlainDriver:
    """The dyno is a process group of its own (start_new_session), stopped as a group.

    With `run_as` (the agent is root), every dyno runs as that user, with no supplementary
    groups and rlimits; without it, dynos run as the agent's own user."""

    name = "none"

    def __init__(self, dynos_dir: Path, run_as: RunAs | None = None) -> None:
        self.dynos_dir = dynos_dir
        self.run_as = run_as

    async def spawn(self, spec: LaunchSpec) -> Process:
        options = self.run_as.spawn_options(DYNO_UMASK) if self.run_as else with_umask(DYNO_UMASK)
        return await start(spec, spec.argv, spec.cwd, options["preexec_fn"])

    def signal(self, process: Process, sig: int) -> None:
        # The group outlives its leader: members still get the signal after the leader exits.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def running(self, process: Process) -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def kill_leftovers(self, pids: Collection[int]) -> int:
        groups = set(pids)
        killed = 0
        if not groups:
            return killed
        for pid, pgid in _processes():
            if pgid in groups and _is_dyno(pid, self.dynos_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        return killed


async def start(
    spec: LaunchSpec, argv: list[str], cwd: Path, preexec: Callable[[], None]
) -> Process:
    """Start `argv` (the dyno's command, or a sandbox wrapping it) with the dyno's stdio, in a
    session of its own; `preexec` runs in the child before exec. Every driver starts dynos
    through this one function."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=spec.env,
        stdin=asyncio.subprocess.PIPE if spec.stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if spec.merge_stderr else asyncio.subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
        preexec_fn=preexec,
    )


def _processes() -> list[tuple[int, int]]:
    """(pid, process group) of every process, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ")".
        fields = stat.rsplit(")", 1)[-1].split()
        found.append((int(entry.name), int(fields[2])))
    return found


def _is_dyno(pid: int, dynos_dir: Path) -> bool:
    """A recorded pid may have been reused after a reboot: only a process whose environment
    says its HOME is a slug directory of ours is killed."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    root = str(dynos_dir).rstrip("/") + "/"
    return any(
        var.startswith(b"HOME=") and var[5:].decode(errors="replace").startswith(root)
        for var in environ.split(b"\0")
    )
