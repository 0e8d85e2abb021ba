"""Jails: what a confined process tree sees and which namespaces it has.

Three drivers behind one interface, chosen at start-up by `detect`:
- `bubblewrap`: the agent (root) prepares the dyno's own mount namespace with a tmpfs scratch and
  the slug at /app, drops to the app's uid, then bwrap makes user, pid, ipc, uts and cgroup
  namespaces and a new read-only root of system directories, with no user namespaces inside;
- `unshare`: the same root built by hand (binds, pivot_root) for machines without bwrap; then,
  as the app's uid, util-linux's `unshare` makes a user and a pid namespace (`tini` its init).

The jails' own programs are the machine's, by absolute paths, never ones a dyno's PATH or
slug could choose; bwrap, which runs before its jail exists, gets an environment of its own.
- `none`: the process only runs as the app's uid in the release's directory (no namespaces).

A dyno's /app is an overlay: the release's unpacked slug below (shared by its dynos, never
written), the dyno's writes above in its tmpfs, gone with the dyno. /tmp is in the same tmpfs.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kapal.sandbox import mounts
from kapal.system_users import RunAs

log = logging.getLogger(__name__)

APP = Path("/app")
# Debian's merged /usr: these are links into /usr on the machine (or, on older systems,
# directories, bound read-only like /usr).
SYSTEM_TOP = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


@dataclass(frozen=True, slots=True)
class Confinement:
    """One process tree's view of the machine."""

    uid: int
    gid: int
    app: Path  # shown at /app: the release's unpacked slug
    scratch: Path  # an empty directory of root's where the tree's tmpfs is mounted
    scratch_size: int  # bytes: /tmp plus what the tree writes to /app
    hostname: str
    etc: Path | None = None  # a directory with the passwd and group files shown in /etc
    shares: tuple[Path, ...] = ()  # shown read-only at the same path (Python runtimes)
    tty: bool = False  # keeps its controlling terminal (no new session)


CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def system_program(name: str) -> str:
    """The machine's own `name`, by absolute path (never looked up in a dyno's PATH)."""
    return shutil.which(name, path=CLEAN_ENV["PATH"]) or f"/usr/bin/{name}"


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start a jailed command: argv, the environment exec gets, and descriptors the
    child keeps (the caller closes them once the child started)."""

    argv: list[str]
    env: dict[str, str]
    fds: tuple[int, ...] = ()

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


class Jail(Protocol):
    name: str
    # Whether the jail's own process runs first and reports the command's exit status.
    wraps: bool

    def home(self, app: Path) -> Path:
        """Where the tree sees `app` (its HOME)."""
        ...

    def command(self, argv: list[str], env: Mapping[str, str], c: Confinement) -> Launch:
        """`argv` with environment `env`, wrapped in the jail's own commands."""
        ...

    def setup(self, c: Confinement) -> Callable[[], None] | None:
        """What the child does as root between fork and exec, if anything."""
        ...


class NoJail:
    """Own uid only: the fallback where namespaces cannot be had."""

    name = "none"
    wraps = False

    def home(self, app: Path) -> Path:
        return app

    def command(self, argv: list[str], env: Mapping[str, str], c: Confinement) -> Launch:
        return Launch(argv, dict(env))

    def setup(self, c: Confinement) -> Callable[[], None] | None:
        return None


def _scratch(c: Confinement) -> tuple[Path, Path]:
    """In the child: a private mount namespace with the tree's tmpfs, /app's overlay and /tmp
    in it; returns (app, tmp) as seen from here."""
    os.umask(0o022)  # the agent's 077 would close the jail's directories to its own user
    mounts.private_namespace()
    mounts.tmpfs(c.scratch, c.scratch_size)
    app, tmp, upper, work = (c.scratch / name for name in ("app", "tmp", "upper", "work"))
    for directory in (app, tmp, upper, work):
        directory.mkdir()
    os.chown(upper, c.uid, c.gid)
    upper.chmod(0o755)
    os.chown(tmp, c.uid, c.gid)
    tmp.chmod(0o1777)
    mounts.overlay(c.app, upper, work, app)
    return app, tmp


RESOLV_CONF = Path("/etc/resolv.conf")


def bwrap_root(hostname: str, etc: Path | None) -> list[str]:
    """bwrap options every jail of ours starts with (dynos' and builds'): its own user (with
    no user namespaces inside), pid, ipc, uts and cgroup namespaces; the machine's system
    directories read-only, the jail's /etc/passwd and /etc/group, /proc and /dev."""
    args = [
        "--unshare-user",
        "--disable-userns",  # no user namespaces inside: no way to regain capabilities
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        hostname,
    ]
    for top in ("usr", "etc", *SYSTEM_TOP):
        path = Path("/", top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    if etc is not None:
        for name in ("passwd", "group"):
            args += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    resolver = Path(os.path.realpath(RESOLV_CONF))
    if not resolver.is_relative_to("/etc") and not resolver.is_relative_to("/usr"):
        args += ["--ro-bind-try", str(resolver), str(resolver)]  # e.g. systemd-resolved's
    return [*args, "--proc", "/proc", "--dev", "/dev"]


class Bubblewrap:
    """bwrap, found by an absolute path and started with an empty environment (a config var
    such as PATH or LD_PRELOAD must not choose what runs before the jail exists); its options
    and the dyno's environment reach it through a file descriptor (`--args`), so no secret
    shows in the machine's process list."""

    name = "bubblewrap"
    wraps = True

    def __init__(self, bwrap: str | None = None) -> None:
        self.bwrap = bwrap or system_program("bwrap")

    def home(self, app: Path) -> Path:
        return APP

    def command(self, argv: list[str], env: Mapping[str, str], c: Confinement) -> Launch:
        args = bwrap_root(c.hostname, c.etc)
        for share in c.shares:
            args += ["--ro-bind", str(share), str(share)]
        args += ["--bind", str(c.scratch / "app"), str(APP)]
        args += ["--bind", str(c.scratch / "tmp"), "/tmp"]  # noqa: S108 (the jail's own /tmp)
        args += ["--remount-ro", "/", "--chdir", str(APP), "--clearenv"]
        for key, value in env.items():
            args += ["--setenv", key, value]
        if not c.tty:
            args.append("--new-session")  # no TIOCSTI into a terminal it does not own
        fd = os.memfd_create("bwrap-args")
        try:
            os.write(fd, b"".join(arg.encode() + b"\0" for arg in args))
            os.lseek(fd, 0, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return Launch([self.bwrap, "--args", str(fd), "--", *argv], CLEAN_ENV, (fd,))

    def setup(self, c: Confinement) -> Callable[[], None] | None:
        def prepare() -> None:
            _scratch(c)

        return prepare


class Unshare:
    """The root bwrap builds, built by hand: bind mounts and pivot_root(2) as root in the
    child; then, as the app's uid, util-linux's `unshare` makes a user namespace (so that it
    may mount /proc) and the pid namespace, with `tini` as its init. Nothing runs as root
    after the child's own setup, and the programs are named by absolute paths."""

    name = "unshare"
    wraps = True

    def __init__(self, unshare: str | None = None, init: str | None = None) -> None:
        self.unshare = unshare or system_program("unshare")
        # The namespace's pid 1 ignores signals it has no handler for: tini is a pid 1 that
        # reaps orphans and passes signals on, so the command behaves as outside.
        self.init = init or system_program("tini")

    def home(self, app: Path) -> Path:
        return APP

    def command(self, argv: list[str], env: Mapping[str, str], c: Confinement) -> Launch:
        wrapper = [
            self.unshare,
            "--user",
            "--map-current-user",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation=unchanged",
            "--",
            self.init,
            "--",
        ]
        return Launch([*wrapper, *argv], dict(env), ())

    def setup(self, c: Confinement) -> Callable[[], None] | None:
        # Read in the parent: the child only makes system calls.
        tops = {name: Path("/", name) for name in SYSTEM_TOP}
        links = {name: os.readlink(p) for name, p in tops.items() if p.is_symlink()}
        dirs = [name for name, p in tops.items() if p.is_dir() and name not in links]
        devices = [name for name in DEVICES if Path("/dev", name).exists()]

        def prepare() -> None:
            mounts.unshare(mounts.CLONE_NEWUTS | mounts.CLONE_NEWIPC)
            socket.sethostname(c.hostname)
            app, tmp = _scratch(c)
            root = c.scratch / "root"
            root.mkdir()
            mounts.bind(root, root, writable=True)  # pivot_root needs a mount point
            for name in ("usr", "etc", "proc", "dev", "tmp", "app", *dirs):
                (root / name).mkdir()
            for name in ("usr", "etc", *dirs):
                mounts.bind(Path("/", name), root / name)
            for name, target in links.items():
                (root / name).symlink_to(target)
            if c.etc is not None:
                for name in ("passwd", "group"):
                    mounts.bind(c.etc / name, root / "etc" / name)
            for name in devices:
                (root / "dev" / name).touch()
                mounts.bind(Path("/dev", name), root / "dev" / name, writable=True, devices=True)
            for share in c.shares:
                inside = root / share.relative_to("/")
                inside.mkdir(parents=True, exist_ok=True)
                mounts.bind(share, inside)
            mounts.bind(app, root / "app", writable=True)
            mounts.bind(tmp, root / "tmp", writable=True)
            # `unshare` needs a /proc to map the uid; it shows only the app's own processes
            # until `--mount-proc` replaces it with the pid namespace's.
            mounts.proc(root / "proc", hidepid=2)
            mounts.remount_read_only(root)
            mounts.pivot_root(root)
            os.chdir(APP)
            mounts.no_new_privileges()

        return prepare


def passwd_files(directory: Path, uid: int, gid: int) -> Path:
    """The /etc/passwd and /etc/group a jailed tree of `uid` sees: root, its own user `dyno`
    (home /app) and nobody; nothing of the machine's users. Written once; returns the
    directory."""
    target = directory / str(uid)
    if (target / "group").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o755)
    files = {
        "passwd": (
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"dyno:x:{uid}:{gid}:dyno:{APP}:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "group": f"root:x:0:\ndyno:x:{gid}:\nnogroup:x:65534:\n",
    }
    for name, text in files.items():
        tmp = target / f".{name}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o644)
        tmp.rename(target / name)
    return target


def detect(choice: str | None, work: Path, uid: int, gid: int) -> Jail:
    """The jail to use: `choice` if given (it must work), else the first of bubblewrap and
    unshare that runs a trial process here, else none (loudly). Only root can jail."""
    candidates: dict[str, Jail] = {"bubblewrap": Bubblewrap(), "unshare": Unshare()}
    if choice == "none":
        return NoJail()
    if os.geteuid() != 0:
        if choice is not None:
            raise OSError(f"the {choice} sandbox needs Kapal to run as root")
        log.warning("not root: dynos run unconfined, as Kapal's own user (sandbox: none)")
        return NoJail()
    names = [choice] if choice is not None else list(candidates)
    reasons = []
    for name in names:
        jail = candidates[name]
        problem = trial(jail, work, uid, gid)
        if problem is None:
            return jail
        reasons.append(f"{name}: {problem}")
        if choice is not None:
            raise OSError(f"the {name} sandbox does not work here: {problem}")
    log.warning(
        "NO SANDBOX: dynos run only as their own uid, with no namespaces (%s)", "; ".join(reasons)
    )
    return NoJail()


def trial(jail: Jail, work: Path, uid: int, gid: int) -> str | None:
    """Run `true` in the jail as `uid`; None if it worked, else why not."""
    work.mkdir(parents=True, exist_ok=True)
    for directory in (work.parent, work):
        directory.chmod(0o711)  # bwrap, run as the trial uid, must reach the scratch mount
    base = Path(tempfile.mkdtemp(prefix=".trial-", dir=work))
    try:
        app, scratch = base / "app", base / "scratch"
        app.mkdir(mode=0o755)
        scratch.mkdir()
        for directory, mode in ((base, 0o711), (app, 0o755), (scratch, 0o711)):
            directory.chmod(mode)
        c = Confinement(uid, gid, app, scratch, 1 << 20, "trial")
        child = RunAs("trial", uid, gid, enter=jail.setup(c)).preexec(0o077)
        probe = ["/bin/sh", "-c", "test -d /proc/self && test -r /app"]
        launch = jail.command(probe, CLEAN_ENV, c)
        if not Path(launch.argv[0]).is_file():
            launch.close()
            return f"{launch.argv[0]} is not installed"
        try:
            result = subprocess.run(
                launch.argv,
                preexec_fn=child,
                capture_output=True,
                text=True,
                timeout=30,
                env=launch.env,
                pass_fds=launch.fds,
                check=False,
            )
        finally:
            launch.close()
        if result.returncode != 0:
            return (result.stderr.strip() or f"exit status {result.returncode}")[-300:]
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        shutil.rmtree(base, ignore_errors=True)
