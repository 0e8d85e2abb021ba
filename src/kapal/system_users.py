"""Unprivileged system users the platform runs code as: other people's code (dynos, builds)
and servers that refuse root (PostgreSQL).

A top-level module because runtime, build and addons all need it and may not import each
other; it depends on nothing of Kapal.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pwd
import resource
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DYNO_USER = "kapal-dyno"
# Generous: RLIMIT_NPROC counts every process of the user, i.e. of all dynos and builds.
NOFILE = 10_000
NPROC = 16_384


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """The system user `name` (and its group), created if missing; needs root to create."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            name,
        ],
        check=False,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True,
        text=True,
    )
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        # Status 9 (exists) means another process made it meanwhile; anything else is real.
        raise OSError(
            f"could not create system user {name}: useradd exited with status "
            f"{result.returncode}: {result.stderr.strip()}"
        ) from None
    if result.returncode == 0:
        log.info("created system user %s", name)
    return entry


def _limits(nofile: int, nproc: int) -> list[tuple[int, int]]:
    """(resource, value) pairs no higher than the hard limits we have (a raise would fail)."""
    wanted = [(resource.RLIMIT_NOFILE, nofile), (resource.RLIMIT_NPROC, nproc)]
    pairs = []
    for which, value in wanted:
        _, hard = resource.getrlimit(which)
        pairs.append((which, value if hard == resource.RLIM_INFINITY else min(value, hard)))
    return pairs


@dataclass(frozen=True, slots=True)
class RunAs:
    """An unprivileged user child processes are started as (only root can start them so)."""

    name: str
    uid: int
    gid: int
    nofile: int = NOFILE
    nproc: int = NPROC
    # Run first in the child, still as root: e.g. joining a cgroup, which the user cannot.
    enter: Callable[[], None] | None = None

    @classmethod
    def system(cls, name: str = DYNO_USER) -> RunAs:
        entry = ensure_system_user(name)
        return cls(name, entry.pw_uid, entry.pw_gid)

    def as_uid(self, uid: int) -> RunAs:
        """The same limits for another unprivileged uid (an app's own, with no passwd entry)."""
        return dataclasses.replace(self, name=f"uid {uid}", uid=uid, gid=uid)

    def spawn_options(self, umask: int) -> dict[str, Any]:
        """Keyword arguments for subprocess.Popen / asyncio.create_subprocess_exec.

        All of it in preexec_fn: uvloop, which runs the agent and the API, has no `user`,
        `group`, `extra_groups` or `umask` arguments."""
        return {"preexec_fn": self.preexec(umask)}

    def preexec(self, umask: int) -> Callable[[], None]:
        """What the forked child does before exec: `enter` (as root), then become the user,
        with no supplementary groups, this umask and the rlimits."""
        uid, gid, enter = self.uid, self.gid, self.enter
        # Computed here, in the parent: the child only makes system calls.
        limits = _limits(self.nofile, self.nproc)

        def become() -> None:
            if enter is not None:
                enter()
            os.setgroups([])  # root's supplementary groups must not be inherited
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)  # last: it ends the right to do the above
            os.umask(umask)
            for which, value in limits:
                resource.setrlimit(which, (value, value))

        return become

    def unreachable(self, path: Path) -> Path | None:
        """The first directory on the way to `path` (or `path` itself, if a directory) this
        user cannot pass through; None if the way is clear."""
        path = Path(os.path.abspath(path))
        for directory in [*reversed(path.parents), path]:
            try:
                st = directory.stat()
            except FileNotFoundError:
                return None  # made later, by someone who can
            if stat.S_ISDIR(st.st_mode) and not self._may_enter(st):
                return directory
        return None

    def may_execute(self, program: Path) -> bool:
        """Whether this user can run `program` (links followed, as exec does)."""
        real = Path(os.path.realpath(program))
        try:
            st = real.stat()
        except OSError:
            return False
        return self.unreachable(real.parent) is None and self._may_enter(st)

    def _may_enter(self, st: os.stat_result) -> bool:
        """The execute bit that applies to this user: enter a directory, run a file."""
        if st.st_uid == self.uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid == self.gid:
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)

    def hand_over(self, path: Path) -> None:
        """Give `path` and everything under it to this user (links themselves, never their
        targets). Bottom-up, so a top directory owned by the user means all of it is. A link
        as `path` itself is refused: os.walk would follow it."""
        if path.is_symlink():
            raise OSError(f"refusing to hand over {path}: it is a link")
        for root, dirs, files in os.walk(path, topdown=False, onerror=_raise):
            for name in (*dirs, *files):
                os.lchown(os.path.join(root, name), self.uid, self.gid)
        os.lchown(path, self.uid, self.gid)

    def owns(self, path: Path) -> bool:
        return path.lstat().st_uid == self.uid


def with_umask(umask: int) -> dict[str, Any]:
    """Spawn options that only set the child's umask (nothing to drop)."""
    return {"preexec_fn": lambda: os.umask(umask)}


def _raise(error: OSError) -> None:
    raise error


def unprivileged(name: str = DYNO_USER) -> RunAs | None:
    """The user to run untrusted code as: `name` when this process is root (created if
    needed); None otherwise, as there is nothing to drop."""
    if os.geteuid() != 0:
        return None
    return RunAs.system(name)
