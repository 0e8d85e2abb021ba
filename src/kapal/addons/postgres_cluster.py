"""Kapal's own PostgreSQL cluster for add-ons: Debian's binaries, an unprivileged user,
127.0.0.1 only, scram-sha-256, an admin password kept in the secrets directory."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path
from urllib.parse import quote

from kapal.addons.errors import ClusterError
from kapal.addons.managed_server import ServerUser, ensure_admin_password, log_tail
from kapal.settings import Settings

log = logging.getLogger(__name__)

SYSTEM_USER = "kapal-postgres"
ADMIN_ROLE = "postgres"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
TIMEOUT = 120.0
_INCLUDE = "include_if_exists = 'kapal.conf'\n"


def find_bin_dir(root: Path = DEBIAN_ROOT) -> Path:
    """The bin directory of the newest installed PostgreSQL major version."""
    found = [
        p / "bin"
        for p in (root.iterdir() if root.is_dir() else [])
        if p.name.isdigit() and (p / "bin" / "initdb").exists()
    ]
    if not found:
        raise ClusterError(
            f"PostgreSQL server binaries not found under {root}/<version>/bin "
            "(install them with `apt-get install postgresql`), or set KAPAL_POSTGRES_ADMIN_URL "
            "to use an existing server."
        )
    return max(found, key=lambda p: int(p.parent.name))


def conf_value(text: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


class ManagedCluster:
    """One cluster in settings.postgres_dir, listening on 127.0.0.1:settings.postgres_port."""

    def __init__(
        self, settings: Settings, *, bin_dir: Path | None = None, system_user: str = SYSTEM_USER
    ) -> None:
        self.root = settings.postgres_dir
        self.port = settings.postgres_port
        self.password_file = settings.secrets_dir / "postgres-admin"
        self._bin_dir = bin_dir
        self._user = ServerUser(system_user)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def admin_url(self) -> str:
        """postgresql://postgres:<password>@127.0.0.1:<port>/postgres (a secret)."""
        try:
            password = self.password_file.read_text().strip()
        except FileNotFoundError:
            raise ClusterError(
                f"{self.password_file} is missing: Kapal's PostgreSQL has not been set up "
                "(`kapal up` does that)."
            ) from None
        return (
            f"postgresql://{ADMIN_ROLE}:{quote(password, safe='')}@127.0.0.1:{self.port}/postgres"
        )

    def initialise(self) -> None:
        """initdb once. A half-made cluster from a crash is thrown away and made again."""
        uid, gid = self._user.ids()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if os.geteuid() == 0:
            os.chown(self.root, uid, gid)
            self._check_reachable(uid, gid)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._user.own(self.socket_dir)
        if (self.data_dir / "PG_VERSION").exists():
            if not self.password_file.exists():
                raise ClusterError(
                    f"{self.data_dir} exists but its admin password file {self.password_file} "
                    "is gone: restore it, or move the data directory away to start afresh."
                )
            return
        password = ensure_admin_password(self.password_file)
        building = self.root / "data.initdb"
        shutil.rmtree(building, ignore_errors=True)
        pwfile = self.root / ".initdb-password"
        self._user.write_private(pwfile, password + "\n")
        try:
            self._run(
                [
                    str(self.bin_dir / "initdb"),
                    "--pgdata",
                    str(building),
                    "--username",
                    ADMIN_ROLE,
                    "--auth",
                    "scram-sha-256",
                    "--pwfile",
                    str(pwfile),
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C.UTF-8",
                    "--no-instructions",
                ],
                what="initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (building / "postgresql.conf").open("a") as conf:
            conf.write("\n# Kapal's settings, rewritten at every start.\n" + _INCLUDE)
        building.rename(self.data_dir)
        log.info("initialised PostgreSQL cluster in %s", self.data_dir)

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def ensure_running(self) -> None:
        """Initialise if needed and start the server; does nothing if it already runs."""
        self.initialise()
        self._user.write_private(
            self.data_dir / "kapal.conf",
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = {conf_value(str(self.socket_dir))}\n"
            "password_encryption = 'scram-sha-256'\n",
        )
        if self.is_running():
            return
        self._pg_ctl("start", "--log", str(self.log_file), "--wait", "--timeout", "60")
        log.info("PostgreSQL for add-ons is listening on 127.0.0.1:%d", self.port)

    def stop(self) -> None:
        """Fast shutdown: open connections are ended, committed data is safe."""
        if not self.is_running():
            return
        self._pg_ctl("stop", "--mode", "fast", "--wait", "--timeout", "60")
        log.info("PostgreSQL for add-ons stopped")

    def _pg_ctl(
        self, action: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / "pg_ctl"), action, "--pgdata", str(self.data_dir), *args]
        return self._run([*argv, "--silent"], what=f"pg_ctl {action}", check=check)

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    def _check_reachable(self, uid: int, gid: int) -> None:
        """Fail clearly when a parent directory keeps the PostgreSQL user out."""
        for parent in self.root.parents:
            st = parent.stat()
            mode = st.st_mode
            if mode & stat.S_IXOTH:
                continue
            if st.st_uid == uid and mode & stat.S_IXUSR:
                continue
            if st.st_gid == gid and mode & stat.S_IXGRP:
                continue
            raise ClusterError(
                f"{parent} (mode {stat.filemode(mode)}) is not traversable by user "
                f"{self._user.name}, which runs PostgreSQL in {self.root}: "
                f"`chmod o+x {parent}` or choose another KAPAL_DATA_DIR."
            )

    def _run(
        self, argv: list[str], *, what: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                argv,
                env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
                cwd=self.root,
                **self._user.run_options(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{what} did not finish within {TIMEOUT:.0f} s") from None
        if check and result.returncode != 0:
            raise ClusterError(
                f"{what} failed with status {result.returncode}: "
                f"{(result.stderr or result.stdout).strip()}{log_tail(self.log_file)}"
            )
        return result


def admin_url(settings: Settings) -> str:
    """The admin URL add-ons are provisioned through: the external server's, or ours."""
    return settings.postgres_admin_url or ManagedCluster(settings).admin_url()
