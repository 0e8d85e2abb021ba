"""One kapal-redis server: its directory (redis.conf, pidfile, log, append-only file) and its
process, which runs detached from whoever started it (Redis daemonizes itself), as the
unprivileged `kapal-redis` when Kapal is root."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kapal.addons.redis_conf import ADMIN_USER, ServerConf, parse, render
from kapal.addons.resp import RespConnection, RespError

log = logging.getLogger(__name__)

CONF = "redis.conf"
PIDFILE = "redis.pid"
LOGFILE = "redis.log"
READY_TIMEOUT = 10.0
STOP_GRACE = 10.0
_LOG_PID = re.compile(rb"^(\d+):", re.MULTILINE)


class RedisServerError(RuntimeError):
    """A server could not be started or stopped; the message never holds a password."""


class RedisServer:
    """The server whose files are in `directory`, run from `binary`, owned by `owner`
    ((uid, gid) to run it as; None: as this process's user)."""

    def __init__(self, directory: Path, binary: str, owner: tuple[int, int] | None) -> None:
        self.directory = directory
        self.binary = binary
        self.owner = owner

    @property
    def conf_path(self) -> Path:
        return self.directory / CONF

    @property
    def pid_path(self) -> Path:
        return self.directory / PIDFILE

    @property
    def log_path(self) -> Path:
        return self.directory / LOGFILE

    def read_conf(self) -> ServerConf | None:
        """The settings Kapal wrote; None when there are none (or half a file from a crash)."""
        try:
            return parse(self.conf_path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def write_conf(self, conf: ServerConf) -> None:
        """redis.conf, replaced atomically: 0600 and owned by the server's user."""
        text = render(conf, self.directory)
        tmp = self.directory / f".{CONF}.tmp"
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if self.owner is not None:
            os.chown(tmp, *self.owner)
        tmp.rename(self.conf_path)

    def pid(self) -> int | None:
        """The pid of this directory's running server, from its pidfile; None if it is not
        running (a pid reused by another process does not count). Without a pidfile, the
        processes are searched: a server writes it only after it forked, and a provisioning
        killed in between must not leave a server nobody can find."""
        name = Path(self.binary).name
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return next((p for p in _pids() if _is_server(p, name, self.directory)), None)
        return pid if _is_server(pid, name, self.directory) else None

    def start(self, conf: ServerConf, timeout: float = READY_TIMEOUT) -> None:
        """Start the server and wait until it answers PING; call with no server running."""
        self.pid_path.unlink(missing_ok=True)  # a crashed server's, whose pid may be reused
        log_start = _size(self.log_path)
        as_other = self.owner is not None
        try:
            # Redis forks and its parent exits; errors in redis.conf come before the fork.
            result = subprocess.run(
                [self.binary, str(self.conf_path)],
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
                cwd=self.directory,
                user=self.owner[0] if self.owner else None,
                group=self.owner[1] if self.owner else None,
                extra_groups=[] if as_other else None,
                umask=0o077,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                start_new_session=True,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RedisServerError(f"could not run {self.binary}: {exc}") from None
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            raise RedisServerError(
                f"{self.binary} exited with status {result.returncode}: "
                f"{_redact(output, conf)}{self._log_tail(conf)}"
            )
        self._wait_ready(conf, timeout, log_start)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM (Redis then writes out its append-only file and exits), SIGKILL after
        `grace`; returns once the process is gone. Nothing running is fine."""
        pid = self.pid()
        if pid is None:
            return
        name = Path(self.binary).name
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _is_server(pid, name, self.directory):
            if time.monotonic() > deadline:
                log.warning("Redis server %d did not stop within %.0f s; killing it", pid, grace)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.005)
        self.pid_path.unlink(missing_ok=True)

    @contextmanager
    def admin(self, conf: ServerConf, timeout: float = 5.0) -> Iterator[RespConnection]:
        """A connection logged in as Kapal's own user."""
        with RespConnection("127.0.0.1", conf.port, timeout=timeout) as conn:
            conn.call("AUTH", ADMIN_USER, conf.admin_password)
            yield conn

    def _wait_ready(self, conf: ServerConf, timeout: float, log_start: int) -> None:
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            try:
                # A short wait per attempt: something else listening on the port (which
                # makes Redis exit) may accept the connection and never answer.
                with self.admin(conf, timeout=1.0) as conn:
                    if conn.call("PING") == "PONG":
                        return
            except RespError as exc:
                # -LOADING while it reads a large append-only file: keep waiting.
                if not str(exc).startswith("LOADING"):
                    raise RedisServerError(
                        f"Redis on 127.0.0.1:{conf.port} refused Kapal's login: "
                        f"{exc}{self._log_tail(conf)}"
                    ) from None
            except OSError:
                pass
            died = self._died(log_start)
            if died or time.monotonic() > deadline:
                problem = "stopped" if died else f"did not answer within {timeout:.0f} s"
                raise RedisServerError(
                    f"Redis on 127.0.0.1:{conf.port} {problem}{self._log_tail(conf)}"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _died(self, log_start: int) -> bool:
        """True once the server started (its log lines begin with its pid) and then exited,
        as it does when its port is taken (before it writes the pidfile)."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(log_start)
                found = _LOG_PID.search(f.read(4096))
        except OSError:
            return False
        if found is None:
            return False
        return not _is_server(int(found[1]), Path(self.binary).name, self.directory)

    def _log_tail(self, conf: ServerConf, lines: int = 10) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n" + _redact("\n".join(tail), conf) if tail else ""


@contextmanager
def locked(directory: Path) -> Iterator[bool]:
    """Hold the lock of an add-on's directory (provision, deprovision and the fleet's
    restarts take turns). Yields False when the directory is gone, or was removed and made
    again while we waited: the lock taken was then the old directory's."""
    while True:
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(directory).st_ino
            except FileNotFoundError:
                current = None
            if current is None:
                yield False
                return
            if current == os.fstat(fd).st_ino:
                yield True
                return
        finally:
            os.close(fd)


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _is_server(pid: int, name: str, directory: Path) -> bool:
    """Whether `pid` is a live (not zombie) `name` process working in `directory`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    comm, _, rest = stat.partition("(")[2].rpartition(")")
    if rest.split()[:1] == ["Z"] or comm != name[:15]:
        return False
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)")
    except PermissionError:
        return True  # another user's process: its name has to do
    except FileNotFoundError:
        return False
    return cwd == os.path.realpath(directory)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _redact(text: str, conf: ServerConf) -> str:
    for secret in (conf.password, conf.admin_password):
        text = text.replace(secret, "[password]")
    return text
