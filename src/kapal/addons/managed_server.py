"""What Kapal's own database servers (ManagedCluster, ManagedMariaDB) share: the user they run
as, the private files they are given, their admin password, and their log's tail for error
messages."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import TypedDict

from kapal.system_users import ensure_system_user


class RunOptions(TypedDict):
    """subprocess.run / Popen keyword arguments that start a child as a server's user."""

    user: int | None
    group: int | None
    extra_groups: list[int] | None
    umask: int


class ServerUser:
    """The user a server runs as: the system user `name` (created if missing) when Kapal is
    root, which the server's files are given to; Kapal's own user otherwise."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._ids: tuple[int, int] | None = None

    def ids(self) -> tuple[int, int]:
        """(uid, gid), looked up (and the system user made) once."""
        if self._ids is None:
            if os.geteuid() == 0:
                entry = ensure_system_user(self.name)
                self._ids = (entry.pw_uid, entry.pw_gid)
            else:
                self._ids = (os.geteuid(), os.getegid())
        return self._ids

    def own(self, path: Path) -> None:
        """Give `path` to the user (only root needs to)."""
        if os.geteuid() == 0:
            os.chown(path, *self.ids())

    def write_private(self, path: Path, text: str) -> None:
        """`path` written afresh: a 0600 file owned by the user."""
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.own(path)

    def run_options(self) -> RunOptions:
        """A child started as the user (when root), with no supplementary groups; umask 077."""
        uid, gid = self.ids()
        as_other = os.geteuid() == 0
        return {
            "user": uid if as_other else None,
            "group": gid if as_other else None,
            "extra_groups": [] if as_other else None,
            "umask": 0o077,
        }


def ensure_admin_password(password_file: Path) -> str:
    """The admin password kept in `password_file`; a new random one, written 0600, if none."""
    with contextlib.suppress(FileNotFoundError):
        return password_file.read_text().strip()
    password = secrets.token_urlsafe(32)
    password_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = password_file.with_name(password_file.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    tmp.rename(password_file)
    return password


def log_tail(log_file: Path, lines: int = 15) -> str:
    """The last lines of a server's log, to end an error message with; "" if there are none."""
    try:
        tail = log_file.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n" + log_file.name + ":\n" + "\n".join(tail) if tail else ""
