"""Whether builds run jailed on this machine (found out at the first build of a process, and
again at each build while bubblewrap's trial fails), and each build's jail
(kapal.sandbox.build_jail): the build directory at /app, and at their own paths what the build
needs besides, nothing else of the data directory."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from kapal.build.process import BuildFailed
from kapal.domain.uids import APP_UID_BASE
from kapal.sandbox.build_jail import Bind, BuildJail, detect
from kapal.sandbox.jail import passwd_files
from kapal.system_users import RunAs

log = logging.getLogger(__name__)


class BuildSandbox:
    """Makes the jails of one Kapal's builds. `choice` is KAPAL_SANDBOX (`none` turns the
    jail off); `work` a directory of the platform's for the trial and the jails' /etc/passwd
    files, made passable to the build users (its parent must be)."""

    def __init__(self, choice: str | None, work: Path, tmp_size: int | None = None) -> None:
        self.choice = choice
        self.work = work
        self.tmp_size = tmp_size
        self._detected = False
        self._bwrap: str | None = None
        self._lock = threading.Lock()

    def jail(self, user: RunAs | None, app: Path, binds: Sequence[Bind]) -> BuildJail | None:
        """The jail of a build of `app` (its build directory) run by `user`, or None where
        builds run unjailed (blocking: run it in a thread). Raises BuildFailed if KAPAL_SANDBOX
        asked for bubblewrap and it does not work."""
        if user is None:
            return None  # not root: nothing to drop, and nothing to jail with
        with self._lock:
            self.work.mkdir(parents=True, exist_ok=True)
            self.work.chmod(0o711)  # passable: the build users' bwrap binds what is below
            if not self._detected:
                trial_user = RunAs(f"uid {APP_UID_BASE}", APP_UID_BASE, APP_UID_BASE)
                try:
                    self._bwrap = detect(self.choice, self.work, trial_user)
                except OSError as exc:
                    log.error("%s", exc)
                    raise BuildFailed(
                        "The build sandbox does not work on this machine (see Kapal's log)."
                    ) from None
                # Only a working jail (or KAPAL_SANDBOX=none) is kept: a trial that failed,
                # maybe for a passing reason, is tried again at the next build, rather than
                # leaving every build of this process unjailed.
                self._detected = self._bwrap is not None or self.choice == "none"
                log.info("build sandbox: %s", "bubblewrap" if self._bwrap else "none")
            if self._bwrap is None:
                return None
            etc = self.work / "etc"
            etc.mkdir(exist_ok=True)
            etc.chmod(0o711)
            users = passwd_files(etc, user.uid, user.gid)
        return BuildJail(self._bwrap, app, tuple(binds), etc=users, tmp_size=self.tmp_size)
