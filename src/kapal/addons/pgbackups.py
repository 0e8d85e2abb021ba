"""pg:backups mechanics: `pg_dump --format=custom` of an add-on database into a private file,
and `pg_restore` of such a file into an add-on database, both with that add-on's own role.

The password reaches the tools through PGPASSWORD, never their argv (which every local user
can read in /proc), and is scrubbed from any message they print. A dump is written under a
temporary name and renamed when complete: a file under a backup's name is always whole.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import psycopg

from kapal.addons.errors import ClusterError
from kapal.addons.postgres_cluster import find_bin_dir
from kapal.domain.errors import KapalError

log = logging.getLogger(__name__)

TIMEOUT = 6 * 3600.0  # a dump or restore running longer than this is stopped
LOCK_WAIT_MS = 120_000  # pg_dump gives up when a table stays locked this long
PARTIAL = ".partial"  # suffix of a dump still being written
MASK = "********"
_MAX_MESSAGE = 600


class BackupError(KapalError):
    """pg_dump or pg_restore failed; the message says why, without credentials."""

    id = "service_unavailable"
    status = 503


@dataclass(frozen=True)
class Credentials:
    """How an add-on's own role reaches its database (from its postgres:// URL)."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_url(cls, url: str) -> Credentials:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
            raise BackupError("The add-on's URL is not a postgres:// URL.")
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")),
        )

    def environment(self) -> dict[str, str]:
        """libpq's variables for pg_dump and pg_restore; nothing inherited from the API."""
        return {
            "PATH": "/usr/bin:/bin",
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.database,
            "PGAPPNAME": "kapal-pgbackups",
            "PGCONNECT_TIMEOUT": "10",
        }

    def scrub(self, text: str) -> str:
        """`text` with the password (plain and URL-quoted) masked."""
        for secret in {self.password, quote(self.password, safe="")}:
            if secret:
                text = text.replace(secret, MASK)
        return text


@dataclass(frozen=True)
class Captured:
    size_bytes: int  # of the dump file
    database_bytes: int  # pg_database_size when the dump started


class PgTools:
    """pg_dump and pg_restore of one PostgreSQL installation (the newest on this machine by
    default: pg_dump must be at least the server's major version)."""

    def __init__(self, bin_dir: Path | None = None, *, timeout: float = TIMEOUT) -> None:
        self._bin_dir = bin_dir
        self.timeout = timeout

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            try:
                self._bin_dir = find_bin_dir()
            except ClusterError as exc:
                raise BackupError(str(exc)) from exc
        return self._bin_dir

    def capture(self, creds: Credentials, dest: Path) -> Captured:
        """Dump the database into `dest` (mode 0600); nothing is left there on failure."""
        database_bytes = self._database_size(creds)
        argv = [
            str(self.bin_dir / "pg_dump"),
            "--format=custom",
            # gzip level 1: about twice as fast as the default level 6 on typical rows, and
            # only a few per cent bigger (bench/addons.py); pg_restore reads either.
            "--compress=1",
            "--no-password",
            f"--lock-wait-timeout={LOCK_WAIT_MS}",
        ]
        partial = dest.with_name(dest.name + PARTIAL)
        try:
            private_dir(dest.parent)
            partial.unlink(missing_ok=True)
            # Made here 0600 whatever the umask: pg_dump opens it again and keeps the mode.
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            self._run([*argv, f"--file={partial}"], creds, what="pg_dump")
            partial.rename(dest)
            size = dest.stat().st_size
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(f"Could not write the backup file: {exc.strerror}.") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _sync_dir(dest.parent)
        return Captured(size, database_bytes)

    def restore(self, creds: Credentials, source: Path) -> None:
        """Replace the dumped objects in the database with the dump's, as the add-on's role,
        in one transaction: a restore that fails changes nothing."""
        if not source.is_file():
            raise BackupError("The backup's file is missing.")
        argv = [
            str(self.bin_dir / "pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",  # GRANTs name the source database's role, not this one
            "--no-tablespaces",
            f"--role={creds.user}",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={creds.database}",
            str(source),
        ]
        self._run(argv, creds, what="pg_restore")

    def _database_size(self, creds: Credentials) -> int:
        try:
            with psycopg.connect(
                host=creds.host,
                port=creds.port,
                user=creds.user,
                password=creds.password,
                dbname=creds.database,
                connect_timeout=10,
                application_name="kapal-pgbackups",
            ) as conn:
                row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        except psycopg.Error as exc:
            raise BackupError(f"PostgreSQL: {creds.scrub(_first_line(str(exc)))}") from exc
        return int(row[0]) if row else 0

    def _run(self, argv: list[str], creds: Credentials, *, what: str) -> None:
        try:
            result = subprocess.run(
                argv,
                env=creds.environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BackupError(f"{what} did not finish within {self.timeout:.0f} s.") from None
        except OSError as exc:
            raise BackupError(f"{what} could not run: {exc.strerror}.") from None
        if result.returncode != 0:
            detail = creds.scrub(error_lines(result.stderr, what))
            raise BackupError(f"{what} failed (exit status {result.returncode}): {detail}")


def error_lines(stderr: str, what: str) -> str:
    """The `<tool>: error:` lines of its output (else its last lines), shortened."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix(f"{what}: error: ") for line in lines if " error: " in line]
    text = " ".join(errors or lines[-3:]) or "no message"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def private_dir(path: Path) -> None:
    """`path` and its parent (the backups directory) exist with mode 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for directory in (path.parent, path):
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)


def _sync_dir(path: Path) -> None:
    """Make the rename durable (pg_dump already synced the file itself)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else "error"
