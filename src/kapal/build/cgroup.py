"""A build's memory cap: its own memory cgroup, below the platform's own, which every build
process joins before it drops its privileges.

cgroup v1 (a `memory` hierarchy, as on this machine's hybrid layout) and v2 (a unified
hierarchy whose `memory` controller the platform's cgroup may delegate) are both used where
they work; elsewhere (no root, no controller) builds run without a cap and the API says so in
its log once. Everything here runs in the API process as root, except `join`, which runs in
the forked child before exec.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
GROUP = "kapal-builds"


@dataclass(frozen=True)
class BuildCgroup:
    """One build's cgroup: `path` in a hierarchy of cgroup `version` 1 or 2."""

    path: Path
    version: int
    limit: int

    @classmethod
    def create(
        cls, name: str, limit: int, root: Path = ROOT, proc_self: Path = Path("/proc/self/cgroup")
    ) -> BuildCgroup | None:
        """A new cgroup capped at `limit` bytes, or None where the platform cannot make one."""
        found = _memory_hierarchy(root, proc_self)
        if found is None:
            return None
        base, version = found
        parent = base / GROUP
        path = parent / name
        try:
            parent.mkdir(exist_ok=True)
            if version == 2:
                _delegate_memory(parent)
            path.mkdir()
            if version == 1:
                (path / "memory.limit_in_bytes").write_text(str(limit))
                # With swap accounting, swap counts too: a build cannot page its way past.
                memsw = path / "memory.memsw.limit_in_bytes"
                if memsw.exists():
                    memsw.write_text(str(limit))
            else:
                (path / "memory.max").write_text(str(limit))
                swap = path / "memory.swap.max"  # only with swap accounting
                if swap.exists():
                    swap.write_text("0")
        except OSError as exc:
            log.warning("cannot make a memory cgroup for builds in %s: %s", parent, exc)
            with contextlib.suppress(OSError):
                path.rmdir()
            return None
        return cls(path, version, limit)

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def join(self) -> None:
        """Move the calling process in (the child, between fork and exec; needs root)."""
        with open(self.procs, "w") as file:
            file.write(str(os.getpid()))

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the build for going over the cap."""
        try:
            if self.version == 1:
                text = (self.path / "memory.oom_control").read_text()
                failed = int((self.path / "memory.failcnt").read_text() or 0)
            else:
                text = (self.path / "memory.events").read_text()
                failed = 0
        except OSError:
            return False
        counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
        if "oom_kill" in counts:
            return int(counts["oom_kill"]) > 0
        return failed > 0  # kernels before 4.13 do not count OOM kills

    def remove(self) -> None:
        """Kill what is left in it (a build step's daemonised leftovers), then delete it."""
        deadline = time.monotonic() + 5
        while True:
            try:
                pids = [int(pid) for pid in self.procs.read_text().split()]
            except FileNotFoundError:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    log.warning("cannot remove the build cgroup %s: %s", self.path, exc)
                    return
            time.sleep(0.05)


def _memory_hierarchy(root: Path, proc_self: Path) -> tuple[Path, int] | None:
    """Where this process's memory cgroup is, and the cgroup version of that hierarchy."""
    try:
        lines = proc_self.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") and (root / "memory").is_dir():
            return root / "memory" / path.lstrip("/"), 1
    for line in lines:
        hierarchy, _, path = line.split(":", 2)
        if hierarchy == "0" and (root / "cgroup.controllers").is_file():
            base = root / path.lstrip("/")
            if "memory" in (root / "cgroup.controllers").read_text().split():
                return base, 2
    return None


def _delegate_memory(parent: Path) -> None:
    """cgroup v2: enable the memory controller for the children of `parent` (its own parent
    must have it enabled for `parent`, which the platform's service manager decides)."""
    control = parent / "cgroup.subtree_control"
    if "memory" not in control.read_text().split():
        control.write_text("+memory")
