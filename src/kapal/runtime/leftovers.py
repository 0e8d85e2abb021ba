"""Dynos an earlier agent run left running (it was killed or crashed, and `kapal up` started it
again): each serves on until a new dyno has replaced it, then it is stopped.

They cannot be adopted for good: their output went through pipes to the dead agent, so what
they print is lost, and their exit status cannot be known. So the agent asks for each to be
restarted (the store's `restart_at`, as `ps:restart` does) and watches it meanwhile: a web
dyno keeps its row, and the router keeps sending it requests, until its replacement is up
and the router has let go of it, exactly as in a deploy.

A leftover is found from its recorded pid alone, whatever driver started it: its processes
are that pid's process group and, when the pid sits in a cgroup of its own (not the agent's),
everything in that cgroup. A pid is only taken for the dyno its row recorded if that process
started before the row was last written: a pid reused since (the dyno ended, or the machine
rebooted) belongs to a process started later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from kapal.runtime.dyno import Dyno

logger = logging.getLogger(__name__)

POLL = 0.5  # how often a leftover is checked for having ended on its own
STOP_POLL = 0.05
CLOCK_SLACK = 1.0  # seconds: /proc/stat's boot time is in whole seconds


def _stat(pid: int) -> list[str] | None:
    """Fields 3... of /proc/<pid>/stat (state first), None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return text.rsplit(")", 1)[-1].split()


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not: nobody may reap an orphan soon)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def started(pid: int) -> float | None:
    """When the process started (seconds since the epoch), None if it does not run."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return None
    with contextlib.suppress(OSError, ValueError, StopIteration):
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return None


def is_leftover(pid: int, written_at: float) -> bool:
    """Whether `pid` runs the dyno a row last written at `written_at` recorded."""
    since = started(pid)
    return since is not None and since <= written_at + CLOCK_SLACK


def _cgroup(pid: int | str) -> str | None:
    try:
        return Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None


def members(pid: int) -> set[int]:
    """The processes of the dyno whose first process is `pid` (see the module's docstring).

    A cgroup only counts as the dyno's own if it is not the agent's and holds nothing older
    than `pid`: a group made for the dyno starts with it, a shared one (a login session's,
    a service's) holds older processes that must not be touched."""
    own = _cgroup(pid)
    first = started(pid)
    group, cgroup = set(), set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None or fields[0] == "Z":
            continue
        if int(fields[2]) == pid:
            group.add(int(entry.name))
        elif own is not None and _cgroup(entry.name) == own:
            cgroup.add(int(entry.name))
    if own is None or own == _cgroup("self") or first is None:
        return group
    if any((since := started(other)) is not None and since < first for other in cgroup):
        return group
    return group | cgroup


def _signal(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_leftover(pid: int) -> int:
    """SIGKILL the dyno whose first process is `pid`; how many processes were signalled."""
    pids = members(pid)
    _signal(pids, signal.SIGKILL)
    return len(pids)


async def watch_leftover(dyno: Dyno) -> None:
    """Until the leftover `dyno` ends on its own, or is stopped and no longer routed; then
    stop it as any dyno is: SIGTERM, the grace period, SIGKILL."""
    pid = dyno.pid
    assert pid is not None
    since = started(pid)
    while True:
        try:
            async with asyncio.timeout(POLL):
                await dyno.stop_due()
            break
        except TimeoutError:
            if started(pid) != since:
                dyno.log.platform("Process of an earlier agent run exited")
                return
    if started(pid) != since:
        return  # gone meanwhile; the pid may be another process's by now
    pids = await asyncio.to_thread(members, pid)
    dyno.log.platform("Stopping all processes with SIGTERM")
    _signal(pids, signal.SIGTERM)
    for _ in range(round(dyno.timing.stop_grace / STOP_POLL)):
        pids = {p for p in pids if alive(p)}
        if not pids:
            return
        await asyncio.sleep(STOP_POLL)
    pids = (await asyncio.to_thread(members, pid)) | {p for p in pids if alive(p)}
    dyno.log.platform(
        "Error R12 (Exit timeout) -> At least one process failed to exit within "
        f"{dyno.timing.stop_grace:g} seconds of SIGTERM"
    )
    dyno.log.platform("Stopping remaining processes with SIGKILL")
    _signal(pids, signal.SIGKILL)
    logger.info("killed %d processes of %s of %s", len(pids), dyno.name, dyno.app_id)
