"""The driver the agent uses as root: each dyno in a jail (kapal.sandbox.jail: bubblewrap,
unshare or none), as its app's own uid, in a cgroup of its own that carries its size's limits
and is how all its processes are signalled, counted, measured and killed.

Without a usable cgroup hierarchy a dyno is still one session, signalled as a process group.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

from kapal.domain.formation import SizeLimits, size_limits
from kapal.runtime.driver import (
    DYNO_UMASK,
    LaunchSpec,
    Process,
    session_running,
    signal_session,
    start,
)
from kapal.sandbox.cgroups import Group, Layout, Limits
from kapal.sandbox.jail import Confinement, Jail, passwd_files
from kapal.system_users import RunAs

logger = logging.getLogger(__name__)

# What a dyno may write to its tmpfs (/tmp and its changes to /app); memory it uses that
# counts against its size, like everything else it holds.
SCRATCH = 2 * 1024**3


class JailedDriver:
    def __init__(
        self,
        jail: Jail,
        cgroups: Layout | None,
        sandbox_dir: Path,
        default_user: RunAs,
        shares: tuple[Path, ...] = (),
        memory_mb: dict[str, int] | None = None,
    ) -> None:
        self.jail = jail
        self.name = jail.name
        self.cgroups = cgroups
        self.scratch = sandbox_dir / "mnt"
        self.etc = sandbox_dir / "etc"
        self.default_user = default_user
        self.shares = shares  # those that exist when a dyno starts (made by builds)
        self.memory_mb = memory_mb or {}
        self.groups: dict[int, Group] = {}  # by the pid of each dyno's first process
        for directory in (sandbox_dir, self.scratch, self.etc):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o711)

    def home(self, release_dir: Path) -> Path:
        return self.jail.home(release_dir)

    def limits(self, size: str) -> SizeLimits:
        return size_limits(size, self.memory_mb)

    def user(self, uid: int | None) -> RunAs:
        """The app's own user, or the shared one for an app made before apps had uids."""
        return self.default_user if uid is None else self.default_user.as_uid(uid)

    async def spawn(self, spec: LaunchSpec) -> Process:
        user = self.user(spec.uid)
        limits = self.limits(spec.size)
        group = None
        if self.cgroups is not None:
            name = f"{spec.app_id}.{spec.dyno}.{uuid.uuid4().hex[:8]}"
            group = self.cgroups.create(name, Limits(limits.memory * 2, limits.pids, limits.cpu))
        try:
            confinement = Confinement(
                uid=user.uid,
                gid=user.gid,
                app=spec.cwd,
                scratch=self.scratch,
                scratch_size=SCRATCH,
                hostname=_hostname(spec.dyno),
                etc=passwd_files(self.etc, user.uid, user.gid),
                shares=tuple(path for path in self.shares if path.is_dir()),
                tty=spec.tty is not None,
            )
            setup = self.jail.setup(confinement)
            enter = _chain(group.join if group is not None else None, setup)
            preexec = dataclasses.replace(user, enter=enter).preexec(DYNO_UMASK)
            launch = self.jail.command(spec.argv, spec.env, confinement)
            cwd = Path("/") if self.jail.wraps else spec.cwd  # a jail sets its own
            try:
                process = await start(spec, launch.argv, cwd, preexec, launch.env, launch.fds)
            finally:
                launch.close()
        except BaseException:
            if group is not None:
                group.remove()
            raise
        if group is not None:
            self.groups[process.pid] = group
        return process

    def signal(self, process: Process, sig: int) -> None:
        group = self.groups.get(process.pid)
        if group is None:
            signal_session(process.pid, sig)
        elif sig == signal.SIGKILL:
            group.kill()
        else:
            # Every process of the dyno, but the jail's own first process: it ends with the
            # command and reports its exit status (the app's, not the signal's).
            group.signal(sig, spare=(process.pid,) if self.jail.wraps else ())

    def running(self, process: Process) -> bool:
        group = self.groups.get(process.pid)
        if group is not None:
            return bool(group.pids())
        return session_running(process.pid)

    def memory(self, process: Process) -> tuple[int, int] | None:
        """(bytes used, processes the kernel killed for memory), None if not measurable."""
        group = self.groups.get(process.pid)
        if group is None:
            return None
        used = group.memory()
        return None if used is None else (used, group.oom_kills())

    def finished(self, process: Process) -> None:
        """The dyno is over: kill anything left and remove its cgroup, and the groups of an
        earlier agent run's dynos that have ended since (kapal.runtime.leftovers)."""
        group = self.groups.pop(process.pid, None)
        if group is not None:
            group.remove()
            self._sweep()

    def _sweep(self) -> None:
        for orphan in self._orphans():
            if not orphan.pids():
                orphan.remove(wait=0)

    def _orphans(self) -> list[Group]:
        """This Kapal's groups that no dyno of this agent run owns."""
        if self.cgroups is None:
            return []
        ours = {group.name for group in self.groups.values()}
        return [group for group in self.cgroups.groups() if group.name not in ours]

    def close(self) -> None:
        """The agent stops: remove the groups left empty (leftovers still running keep
        theirs, for the next run) and this Kapal's directories if nothing is left."""
        if self.cgroups is None:
            return
        self._sweep()
        self.cgroups.remove()


def _chain(*steps: Callable[[], None] | None) -> Callable[[], None]:
    actions = [step for step in steps if step is not None]

    def run() -> None:
        for action in actions:
            action()

    return run


def _hostname(dyno: str) -> str:
    """A host name per dyno, as Heroku gives each its own (a-z, 0-9 and '-' only)."""
    return "dyno-" + "".join(c if c.isalnum() else "-" for c in dyno.lower())[:50]
