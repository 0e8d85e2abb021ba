"""The build jail: what a build's processes see of the machine.

Each build process (a buildpack's bin/detect, bin/compile, bin/release; uv; collectstatic)
is started as the app's uid, then bubblewrap makes user, pid, ipc and uts namespaces and a
new, read-only root: the system directories as the dyno jail shows them (/usr, /etc, the
merged-usr links), /proc, /dev, a private tmpfs at /tmp, the build directory writable at
/app, and what else the build needs at its own path (the fetched buildpacks, ENV_DIR, the
app's build cache, the Python runtimes, uv). Nothing else of the data directory (the state
database, secrets, other apps' caches and builds) is there. The network is the machine's:
builds download packages.

Paths the platform hands a build process (arguments, environment values, its working
directory) name the build directory on the machine; `BuildJail.wrap` turns them into /app,
so a buildpack builds the app where its dynos run it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kapal.sandbox.jail import APP, bwrap_root
from kapal.system_users import RunAs

log = logging.getLogger(__name__)

SEEN_BY_ALL = (Path("/usr"), Path("/etc"))  # bound whole, so not bound again below them


@dataclass(frozen=True, slots=True)
class Bind:
    """A path shown at its own place in the jail, if it exists when a process starts."""

    path: Path
    writable: bool = False


@dataclass(frozen=True, slots=True)
class BuildJail:
    """One build's jail: `app` (the build directory) at /app, `binds` at their own paths."""

    bwrap: str
    app: Path
    binds: tuple[Bind, ...] = ()
    etc: Path | None = None  # a directory with the passwd and group files shown in /etc
    tmp_size: int | None = None  # bytes /tmp may hold (its pages count as the build's memory)
    hostname: str = "build"

    def inside(self, path: str) -> str:
        """Where the jail sees `path`: the build directory and what is below it are /app."""
        app = str(self.app)
        if path == app:
            return str(APP)
        if path.startswith(app + "/"):
            return str(APP) + path[len(app) :]
        return path

    def _inside_list(self, value: str) -> str:
        """An environment value, each of its ':'-separated parts (PATH) seen from inside."""
        return ":".join(self.inside(part) for part in value.split(":"))

    def wrap(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None
    ) -> tuple[list[str], dict[str, str]]:
        """The command that runs `argv` in the jail (in `cwd`, seen from inside) and its
        environment; it is started from /."""
        args = [self.bwrap, "--die-with-parent", *bwrap_root(self.hostname, self.etc)]
        if self.tmp_size is not None:
            args += ["--size", str(self.tmp_size)]
        # Before the binds: one below /tmp on the machine is then made in the jail's own.
        args += ["--tmpfs", "/tmp"]  # noqa: S108 (the jail's own /tmp)
        for bind in self.binds:
            if not _below(bind.path, SEEN_BY_ALL):
                option = "--bind-try" if bind.writable else "--ro-bind-try"
                args += [option, str(bind.path), str(bind.path)]
        args += ["--bind", str(self.app), str(APP)]
        # The root bwrap made is read-only: a write outside /app, /tmp and the writable binds
        # fails instead of vanishing with the jail.
        args += ["--remount-ro", "/"]
        args += ["--chdir", self.inside(str(cwd)) if cwd is not None else str(APP)]
        command = [*args, "--", *(self.inside(arg) for arg in argv)]
        return command, {key: self._inside_list(value) for key, value in env.items()}


def _below(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def detect(choice: str | None, work: Path, user: RunAs | None) -> str | None:
    """The bwrap program builds are jailed with, or None where they run unjailed: not root
    (nothing to drop), KAPAL_SANDBOX=none, or bubblewrap failing a trial here (with a warning;
    an error if KAPAL_SANDBOX asked for bubblewrap)."""
    if user is None or choice == "none":
        return None
    bwrap = shutil.which("bwrap", path="/usr/bin:/usr/local/bin:/bin")
    problem = "bwrap is not installed" if bwrap is None else trial(bwrap, work, user)
    if problem is None:
        return bwrap
    if choice == "bubblewrap":
        raise OSError(f"the bubblewrap sandbox does not work here for builds: {problem}")
    log.warning(
        "BUILDS NOT JAILED: bubblewrap does not work here (%s); build steps run only as "
        "their app's uid, seeing the machine as that user may",
        problem,
    )
    return None


def trial(bwrap: str, work: Path, user: RunAs) -> str | None:
    """Run a shell in a build jail as `user`; None if it worked, else why not."""
    work.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=".trial-", dir=work))
    try:
        base.chmod(0o711)
        app = base / "app"
        app.mkdir()
        os.chown(app, user.uid, user.gid)
        jail = BuildJail(bwrap, app, tmp_size=1 << 20)
        argv, env = jail.wrap(
            ["/bin/sh", "-c", "test -d /proc/self && touch /app/ok /tmp/ok"],
            {"PATH": "/usr/bin:/bin"},
            app,
        )
        result = subprocess.run(
            argv,
            cwd="/",
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            **user.spawn_options(0o077),
        )
        if result.returncode != 0:
            return (result.stderr.strip() or f"exit status {result.returncode}")[-300:]
        if not (app / "ok").exists():
            return "the jail's /app is not the build directory"
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        shutil.rmtree(base, ignore_errors=True)
