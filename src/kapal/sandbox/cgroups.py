"""A cgroup per dyno: its memory, pids and CPU limits, and the one handle on its whole process
tree (daemonised and setsid'd children included), to signal it, kill it and measure it.

Three layouts are met:
- cgroup v2 alone (/sys/fs/cgroup is cgroup2): memory.max, pids.max, cpu.weight and cgroup.kill
  in one group, with the controllers delegated to it where the parent allows;
- v1 or hybrid (this machine): one hierarchy per controller (memory, pids, cpu), plus, when it
  exists, the controller-less v2 hierarchy (/sys/fs/cgroup/unified) for tracking and
  cgroup.kill;
- nothing writable (not root, a container): no cgroup; the driver falls back to process groups.

A dyno's group sits below the agent's own group of each hierarchy, in a directory for this
Kapal instance (`kapal-<instance>`), so two Kapals on one machine never touch each other's dynos.
Everything runs as root in the agent, except `join`, which the child runs before it drops its
privileges (a process cannot move itself into a cgroup once unprivileged).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "pids", "cpu")
# The CPU weight of all of an instance's dynos together against one platform process (the
# agent, a router worker, the API: 100 each, at nice 0). The scheduler only weighs them when
# both want a CPU, so idle platform leaves the dynos every core; but ten dynos spinning cannot
# keep the log hub or the router, which serve every tenant, waiting for one.
DYNOS_CPU_WEIGHT = 10
TRACKER = "unified"  # the key of the controller-less v2 hierarchy among `Layout.bases`


@dataclass(frozen=True, slots=True)
class Limits:
    memory: int  # bytes: the kernel's hard limit
    pids: int
    cpu_weight: int  # 1..10000, cgroup v2's scale (100 is one share)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where this instance's groups are made, per hierarchy: `bases` maps a controller (or
    TRACKER) to a directory; with cgroup v2 alone, every key maps to the same directory."""

    version: int  # 1 (v1 or hybrid) or 2
    bases: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def detect(
        cls,
        instance: str,
        mounts: Path = Path("/proc/self/mounts"),
        own: Path = Path("/proc/self/cgroup"),
    ) -> Layout | None:
        """The layout for `instance`, its directories made; None where no group can be made."""
        try:
            found = _hierarchies(mounts.read_text(), own.read_text())
        except OSError:
            return None
        if found is None:
            return None
        version, places = found
        bases = {key: place / f"kapal-{instance}" for key, place in places.items()}
        made = {}
        for key, base in bases.items():
            try:
                base.mkdir(exist_ok=True)
            except OSError as exc:
                log.warning("cannot make cgroup %s: %s", base, exc)
                continue
            made[key] = base
        if version == 2 and made:
            _delegate(next(iter(made.values())))
        if not made:
            return None
        if "cpu" in made:
            _write_weight(version, made["cpu"], DYNOS_CPU_WEIGHT)
        return cls(version, made)

    def create(self, name: str, limits: Limits) -> Group:
        """A new group `name` with these limits; a limit the kernel refuses is logged and left
        out (a dyno without a CPU weight still runs)."""
        dirs = {}
        for key, base in self.bases.items():
            path = base / name
            path.mkdir()
            dirs[key] = path
        group = Group(self.version, dirs)
        group.limit(limits)
        return group

    def groups(self) -> list[Group]:
        """Every group of this instance (an earlier agent's dynos after a restart)."""
        names: set[str] = set()
        for base in self.bases.values():
            with contextlib.suppress(OSError), os.scandir(base) as entries:
                names.update(e.name for e in entries if e.is_dir(follow_symlinks=False))
        return [
            Group(self.version, {key: base / name for key, base in self.bases.items()})
            for name in sorted(names)
        ]

    def remove(self) -> None:
        """Remove the instance's directories if no group is left in them."""
        for base in set(self.bases.values()):
            with contextlib.suppress(OSError):
                base.rmdir()


@dataclass(frozen=True, slots=True)
class Group:
    version: int
    dirs: dict[str, Path]

    @property
    def name(self) -> str:
        return next(iter(self.dirs.values())).name

    def limit(self, limits: Limits) -> None:
        memory = self.dirs.get("memory")
        if memory is not None and self.version == 1:
            _write(memory / "memory.limit_in_bytes", limits.memory)
            # With swap accounting, swap counts too: a dyno cannot page its way past.
            _write(memory / "memory.memsw.limit_in_bytes", limits.memory, optional=True)
        elif memory is not None:
            _write(memory / "memory.max", limits.memory)
            _write(memory / "memory.swap.max", 0, optional=True)
        pids = self.dirs.get("pids")
        if pids is not None:
            _write(pids / "pids.max", limits.pids)
        cpu = self.dirs.get("cpu")
        if cpu is not None:
            _write_weight(self.version, cpu, limits.cpu_weight)

    def join(self) -> None:
        """Move the calling process in (between fork and exec, as root): it must make only
        system calls, no allocation-heavy Python."""
        pid = str(os.getpid()).encode()
        for path in set(self.dirs.values()):
            fd = os.open(path / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        key = _tracking_key(self.dirs)
        if key is None:
            return []
        try:
            text = (self.dirs[key] / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def signal(self, sig: int, spare: Iterable[int] = ()) -> int:
        """Send `sig` to every process in the group but `spare`; how many got it."""
        keep = set(spare)
        sent = 0
        for pid in self.pids():
            if pid in keep:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                sent += 1
        return sent

    def kill(self) -> None:
        """SIGKILL everything in the group, forks racing the kill included."""
        tracker = self.dirs.get(TRACKER) if self.version == 1 else self.dirs.get("memory")
        kill_file = tracker / "cgroup.kill" if tracker is not None else None
        if kill_file is not None and kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1")
                return
        for _ in range(100):  # a fork bomb refills the group while we kill: repeat
            if not self.signal(signal.SIGKILL):
                return

    def memory(self) -> int | None:
        """Bytes the dyno uses as Heroku counts them (resident, swapped, and what it wrote to
        its tmpfs), None without a memory controller."""
        path = self.dirs.get("memory")
        if path is None:
            return None
        try:
            stat = _stat(path / "memory.stat")
        except OSError:
            return None
        if self.version == 1:
            return stat.get("total_rss", 0) + stat.get("total_swap", 0) + stat.get("total_shmem", 0)
        return stat.get("anon", 0) + stat.get("shmem", 0) + _swap_v2(path)

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        path = self.dirs.get("memory")
        if path is None:
            return 0
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            return _stat(path / name).get("oom_kill", 0)
        except OSError:
            return 0

    def remove(self, wait: float = 5.0) -> bool:
        """Kill what is left and delete the group; False if it could not be deleted in time."""
        deadline = time.monotonic() + wait
        while True:
            self.kill()
            try:
                for path in self.dirs.values():
                    with contextlib.suppress(FileNotFoundError):
                        path.rmdir()
                return True
            except OSError as exc:
                if time.monotonic() > deadline:
                    log.warning("cannot remove cgroup %s: %s", self.name, exc)
                    return False
            time.sleep(0.02)


def _hierarchies(mounts: str, own: str) -> tuple[int, dict[str, Path]] | None:
    """(version, {controller or TRACKER: this process's group in that hierarchy})."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point, kind, options = Path(fields[1]), fields[2], fields[3].split(",")
        if kind == "cgroup2":
            v2 = point
        elif kind == "cgroup":
            for controller in CONTROLLERS:
                if controller in options:
                    v1[controller] = point
    paths: dict[str, str] = {}
    for line in own.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0":
            paths[TRACKER] = path
        for controller in controllers.split(","):
            paths[controller] = path
    if v1:
        places = {c: point / paths.get(c, "/").lstrip("/") for c, point in v1.items()}
        if v2 is not None and TRACKER in paths:
            places[TRACKER] = v2 / paths[TRACKER].lstrip("/")
        return 1, places
    if v2 is not None and TRACKER in paths:
        group = v2 / paths[TRACKER].lstrip("/")
        return 2, {key: group for key in (*CONTROLLERS, TRACKER)}
    return None


def _delegate(base: Path) -> None:
    """cgroup v2: enable our controllers for the dynos' groups below `base`, as far as the
    parent delegated them to us (the rest goes without)."""
    try:
        available = (base / "cgroup.controllers").read_text().split()
        wanted = [c for c in CONTROLLERS if c in available]
        if wanted:
            (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
    except OSError as exc:
        log.warning("cannot delegate cgroup controllers in %s: %s", base, exc)


def _tracking_key(dirs: dict[str, Path]) -> str | None:
    for key in (TRACKER, "pids", "memory", "cpu"):
        if key in dirs:
            return key
    return None


def _write(path: Path, value: int, optional: bool = False) -> None:
    try:
        path.write_text(str(value))
    except FileNotFoundError:
        if not optional:
            log.warning("cgroup file %s is missing: limit not set", path)
    except OSError as exc:
        log.warning("cannot set %s to %d: %s", path, value, exc)


def _write_weight(version: int, group: Path, weight: int) -> None:
    """A CPU weight on cgroup v2's scale (100: one nice-0 process), as v1's shares (1024)."""
    if version == 1:
        _write(group / "cpu.shares", max(2, weight * 1024 // 100))
    else:
        _write(group / "cpu.weight", max(1, weight))


def _stat(path: Path) -> dict[str, int]:
    pairs = (line.split() for line in path.read_text().splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}


def _swap_v2(path: Path) -> int:
    try:
        return int((path / "memory.swap.current").read_text())
    except (OSError, ValueError):
        return 0
