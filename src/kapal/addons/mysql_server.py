"""Kapal's own MariaDB for kapal-mysql add-ons, when KAPAL_MYSQL_ADMIN_URL names no server:
Debian's mariadbd, run as the unprivileged kapal-mysql, 127.0.0.1 only, with an admin account
whose password is kept in the secrets directory and root reachable over the socket only."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pymysql

from kapal.addons.errors import ClusterError
from kapal.addons.managed_server import ServerUser, ensure_admin_password, log_tail
from kapal.addons.mysql import native_hash
from kapal.settings import Settings
from kapal.system_users import RunAs

log = logging.getLogger(__name__)

SYSTEM_USER = "kapal-mysql"
ADMIN_USER = "kapal_admin"
MARIADBD = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")
PACKAGES = "mariadb-server-core mariadb-client-core"  # mariadbd; mariadb-install-db's helpers
INSTALL_TIMEOUT = 120.0
READY_TIMEOUT = 60.0
STOP_GRACE = 30.0
_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
_HASH = re.compile(r"^\*[0-9A-F]{40}$")


def server_conf(root: Path, port: int) -> str:
    """my.cnf, all mariadbd reads: it is started with --defaults-file, so the machine's own
    /etc/mysql settings (its datadir, port, user) never apply."""
    return (
        "[mariadbd]\n"
        f"datadir = {root / 'data'}\n"
        f"socket = {root / 'mysqld.sock'}\n"
        f"pid-file = {root / 'mysqld.pid'}\n"
        f"log-error = {root / 'error.log'}\n"
        "bind-address = 127.0.0.1\n"
        f"port = {port}\n"
        "skip-networking = 0\n"  # add-ons connect over TCP
        "skip-name-resolve\n"  # accounts by address: kapal_admin@127.0.0.1, add-ons' %
        "character-set-server = utf8mb4\n"
        # Modest memory, as the machine also runs the apps: MariaDB's defaults (128 MB each
        # for InnoDB's buffer pool and the MyISAM and Aria caches, which only hold the system
        # tables here) make way for about 70 MB resident when idle.
        "innodb_buffer_pool_size = 64M\n"
        "innodb_log_file_size = 32M\n"
        "key_buffer_size = 8M\n"
        "aria_pagecache_buffer_size = 8M\n"
    )


def admin_sql(password_hash: str) -> str:
    """The admin account, created at initialisation; only the password's hash is written."""
    if not _HASH.match(password_hash):
        raise ValueError("not a mysql_native_password hash")
    account = f"'{ADMIN_USER}'@'127.0.0.1'"
    return (
        # mariadbd --bootstrap runs without its grant tables; this loads them, so account
        # statements work.
        "FLUSH PRIVILEGES;\n"
        f"CREATE USER {account} IDENTIFIED BY PASSWORD '{password_hash}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;\n"
    )


class ManagedMariaDB:
    """One server in settings.mysql_dir, listening on 127.0.0.1:settings.mysql_port."""

    def __init__(
        self,
        settings: Settings,
        *,
        mariadbd: Path = MARIADBD,
        install_db: Path = INSTALL_DB,
        system_user: str = SYSTEM_USER,
    ) -> None:
        self.root = settings.mysql_dir
        self.port = settings.mysql_port
        self.password_file = settings.secrets_dir / "mysql-admin"
        self.mariadbd = mariadbd
        self.install_db = install_db
        self._user = ServerUser(system_user)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def conf_file(self) -> Path:
        return self.root / "my.cnf"

    @property
    def socket(self) -> Path:
        return self.root / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.root / "mysqld.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "error.log"

    def installed(self) -> bool:
        return all(os.access(p, os.X_OK) for p in (self.mariadbd, self.install_db))

    def admin_url(self) -> str:
        """mysql://kapal_admin:<password>@127.0.0.1:<port> (a secret)."""
        try:
            password = self.password_file.read_text().strip()
        except FileNotFoundError:
            raise ClusterError(
                f"kapal-mysql needs a MariaDB or MySQL server, and Kapal's own has not been set "
                f"up ({self.password_file} is missing): `kapal up` runs one when MariaDB is "
                f"installed (`apt-get install {PACKAGES}`). Or set KAPAL_MYSQL_ADMIN_URL to "
                "use another server."
            ) from None
        return f"mysql://{ADMIN_USER}:{quote(password, safe='')}@127.0.0.1:{self.port}"

    def initialise(self) -> None:
        """mariadb-install-db once. A half-made data directory from a crash is made again."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        self._user.own(self.root)
        if os.geteuid() == 0:
            uid, gid = self._user.ids()
            closed = RunAs(self._user.name, uid, gid).unreachable(self.root)
            if closed is not None:
                raise ClusterError(
                    f"{closed} is not traversable by user {self._user.name}, which runs "
                    f"MariaDB in {self.root}: `chmod o+x {closed}` or choose another "
                    "KAPAL_DATA_DIR."
                )
        if (self.data_dir / "mysql").is_dir():
            if not self.password_file.exists():
                raise ClusterError(
                    f"{self.data_dir} exists but its admin password file {self.password_file} "
                    "is gone: restore it, or move the data directory away to start afresh."
                )
            return
        if not self.installed():
            raise ClusterError(
                f"MariaDB is not installed ({self.mariadbd}, {self.install_db}): "
                f"`apt-get install {PACKAGES}`, or set KAPAL_MYSQL_ADMIN_URL to use another "
                "server."
            )
        password = ensure_admin_password(self.password_file)
        building = self.root / "data.init"
        shutil.rmtree(building, ignore_errors=True)
        self._user.write_private(self.conf_file, server_conf(self.root, self.port))
        extra = self.root / ".admin.sql"
        self._user.write_private(extra, admin_sql(native_hash(password)))
        try:
            self._install(building, extra)
        finally:
            extra.unlink(missing_ok=True)
        building.rename(self.data_dir)
        log.info("initialised MariaDB in %s", self.data_dir)

    def pid(self) -> int | None:
        """The running server's pid; None when none runs from this directory."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self._is_server(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def ensure_running(self, timeout: float = READY_TIMEOUT) -> None:
        """Initialise if needed and start the server (or reuse the one running), then wait
        until it accepts the admin's connections."""
        self.initialise()
        self._user.write_private(self.conf_file, server_conf(self.root, self.port))
        if self.pid() is None:
            self._spawn()
        try:
            self._wait_ready(timeout)
        except ClusterError:
            self.stop()
            raise
        log.info("MariaDB for add-ons is listening on 127.0.0.1:%d", self.port)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM (InnoDB then shuts down cleanly), SIGKILL after `grace`; returns once the
        process is gone. Nothing running is fine."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self._alive(pid):
                if time.monotonic() > deadline:
                    log.warning("MariaDB %d did not stop within %.0f s; killing it", pid, grace)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    deadline = float("inf")
                time.sleep(0.02)
            log.info("MariaDB for add-ons stopped")
        if self._process is not None:
            self._process.wait()
            self._process = None

    def _install(self, building: Path, extra: Path) -> None:
        # Run as the server's user, never with --user: as root, the script would also make
        # the PAM plugin's helper setuid root and hand its directory to that user.
        argv = [
            str(self.install_db),
            f"--defaults-file={self.conf_file}",
            f"--datadir={building}",
            "--skip-test-db",
            "--auth-root-authentication-method=socket",
            f"--auth-root-socket-user={pwd.getpwuid(os.geteuid()).pw_name}",
            f"--extra-file={extra}",
        ]
        try:
            result = subprocess.run(
                argv,
                env=_ENV,
                cwd=self.root,
                **self._user.run_options(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(
                f"mariadb-install-db did not finish within {INSTALL_TIMEOUT:.0f} s"
                f"{log_tail(self.log_file)}"
            ) from None
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()[:5]
            raise ClusterError(
                f"mariadb-install-db failed with status {result.returncode}: "
                f"{' '.join(output)}{log_tail(self.log_file)}"
            )

    def _spawn(self) -> None:
        """mariadbd in a session of its own (Ctrl-C in `kapal up`'s terminal is for Kapal,
        which stops it last); what it says before its error log opens goes there too."""
        self.pid_file.unlink(missing_ok=True)  # a killed server's, whose pid may be reused
        fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._user.own(self.log_file)
        try:
            self._process = subprocess.Popen(
                [str(self.mariadbd), f"--defaults-file={self.conf_file}"],
                env=_ENV,
                cwd=self.root,
                **self._user.run_options(),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,
            )
        except OSError as exc:
            raise ClusterError(f"could not run {self.mariadbd}: {exc}") from None
        finally:
            os.close(fd)

    def _wait_ready(self, timeout: float) -> None:
        password = ensure_admin_password(self.password_file)
        deadline = time.monotonic() + timeout
        pause = 0.01
        while True:
            try:
                # Short waits: something else on the port (which makes mariadbd exit) may
                # accept the connection and never answer.
                conn = pymysql.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user=ADMIN_USER,
                    password=password,
                    connect_timeout=2,
                    read_timeout=2,
                    write_timeout=2,
                )
                with conn, conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    return
            except pymysql.err.MySQLError as exc:
                last = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            if not self.is_running():
                status = self._process.returncode if self._process else None
                raise ClusterError(
                    f"MariaDB exited{'' if status is None else f' with status {status}'} "
                    f"before it accepted connections on 127.0.0.1:{self.port}"
                    f"{log_tail(self.log_file)}"
                )
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"MariaDB did not accept connections on 127.0.0.1:{self.port} within "
                    f"{timeout:.0f} s ({last}){log_tail(self.log_file)}"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        return self._is_server(pid)

    def _is_server(self, pid: int) -> bool:
        """Whether `pid` is a live mariadbd working in our data directory (a pid reused by
        another process does not count)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return False
        comm, _, rest = stat.partition("(")[2].rpartition(")")
        alive = rest.split()[:1] != ["Z"]
        return alive and comm == self.mariadbd.name[:15] and cwd == str(self.data_dir.resolve())


def admin_url(settings: Settings) -> str:
    """The admin URL kapal-mysql add-ons are provisioned through: the given server's, or ours."""
    return settings.mysql_admin_url or ManagedMariaDB(settings).admin_url()
