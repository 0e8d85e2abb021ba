"""The MySQL provisioner: one database and one user per add-on on a MariaDB/MySQL server."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import pymysql
import pymysql.cursors

from kapal.addons.catalog import MYSQL, Plan
from kapal.addons.errors import ProvisionError

log = logging.getLogger(__name__)

SETTING = "KAPAL_MYSQL_ADMIN_URL"
# The user exists for every host; without anonymous users (MariaDB's and MySQL's default
# now), '%' also matches connections from localhost, by TCP or the socket.
ANY_HOST = "%"
_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
_SAFE_NAME = re.compile(r"^[a-z][a-z0-9-]{1,55}$")
_MAX_DATABASE = 64  # MariaDB and MySQL identifiers
_MAX_USER = 80  # MariaDB (MySQL 8 allows 32)
_NO_SUCH_THREAD = 1094  # a connection ended before KILL reached it
_LOCK_TIMEOUT = 30


@dataclass(frozen=True)
class AdminUrl:
    host: str
    port: int
    user: str
    password: str


def parse_admin_url(url: str) -> AdminUrl:
    """`mysql://root:pw@127.0.0.1:3306`; errors name the setting, never echo the URL."""
    usage = f"Set {SETTING} to an admin URL such as mysql://root:password@127.0.0.1:3306."
    if not url:
        raise ProvisionError(f"kapal-mysql needs a MariaDB or MySQL server. {usage}")
    try:
        parts = urlsplit(url)
        port = parts.port or 3306
    except ValueError:
        raise ProvisionError(f"{SETTING} is not a valid URL. {usage}") from None
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname or not parts.username:
        raise ProvisionError(f"{SETTING} is not a mysql:// URL with a user and host. {usage}")
    return AdminUrl(parts.hostname, port, unquote(parts.username), unquote(parts.password or ""))


def database_name(addon_name: str) -> str:
    """The database and user of an add-on: mysql-silent-12345 -> kapal_mysql_silent_12345."""
    if not _SAFE_NAME.match(addon_name):
        raise ValueError(f"not a valid add-on name: {addon_name!r}")
    ident = "kapal_" + addon_name.replace("-", "_")
    assert len(ident) <= min(_MAX_DATABASE, _MAX_USER)
    return ident


def quote_identifier(ident: str) -> str:
    """A backquoted identifier: PyMySQL quotes only literals, so names are checked first."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", ident):
        raise ValueError(f"not a plain identifier: {ident!r}")
    return f"`{ident}`"


def grant_pattern(database: str) -> str:
    """The database as a GRANT pattern: `_` is a wildcard there, and unescaped it would let
    kapal_a_b's user into kapal_aXb."""
    return quote_identifier(database).replace("_", "\\_")


def native_hash(password: str) -> str:
    """mysql_native_password's stored form, so the plain password never reaches the server,
    its logs or its process list."""
    inner = hashlib.sha1(password.encode()).digest()  # noqa: S324 - the server's format
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def database_url(user: str, password: str, host: str, port: int, database: str) -> str:
    def q(text: str) -> str:
        return quote(text, safe="")

    return f"mysql://{q(user)}:{q(password)}@{host}:{port}/{q(database)}"


class MysqlProvisioner:
    """Provisions add-on databases through an admin connection URL."""

    def __init__(self, admin_url: str, *, connect_timeout: int = 10) -> None:
        self._admin = parse_admin_url(admin_url)
        self._connect_timeout = connect_timeout
        host = self._admin.host
        # 127.0.0.1, not localhost: MySQL's C client (mysqlclient, Django's default) reads
        # `localhost` as "the default Unix socket" and ignores the port.
        self.public_host = "127.0.0.1" if host in _LOCAL_HOSTS else host
        self.public_port = self._admin.port

    def provision(self, name: str, plan: str) -> dict[str, str]:
        """Create (or finish creating) the add-on's user and database; returns {"URL": ...}."""
        limit = _plan(plan).connection_limit
        ident = database_name(name)
        password = secrets.token_urlsafe(24)
        account = (ident, ANY_HOST, native_hash(password), limit)
        with self._session(ident) as cur:
            # A user left by a crashed attempt is reused with a new password: nobody has
            # seen the old one, since the URL is only stored once provisioning finished.
            cur.execute(
                "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED WITH mysql_native_password AS %s "
                "WITH MAX_USER_CONNECTIONS %s",
                account,
            )
            cur.execute(
                "ALTER USER %s@%s IDENTIFIED WITH mysql_native_password AS %s "
                "WITH MAX_USER_CONNECTIONS %s",
                account,
            )
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS {quote_identifier(ident)} CHARACTER SET utf8mb4"
            )
            cur.execute(
                f"GRANT ALL PRIVILEGES ON {grant_pattern(ident)}.* TO %s@%s", (ident, ANY_HOST)
            )
        log.info("provisioned MySQL database for add-on %s", name)
        url = database_url(ident, password, self.public_host, self.public_port, ident)
        return {"URL": url}

    def deprovision(self, name: str) -> None:
        """Drop the add-on's user, end its connections, drop its database; missing is fine."""
        ident = database_name(name)
        with self._session(ident) as cur:
            # The user goes first, so no new connection can start while the old ones end.
            cur.execute("DROP USER IF EXISTS %s@%s", (ident, ANY_HOST))
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (ident,))
            for (thread,) in cur.fetchall():
                try:
                    cur.execute("KILL CONNECTION %s", (int(thread),))
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] != _NO_SUCH_THREAD:
                        raise
            cur.execute(f"DROP DATABASE IF EXISTS {quote_identifier(ident)}")
        log.info("deprovisioned MySQL database of add-on %s", name)

    @contextmanager
    def _session(self, ident: str) -> Iterator[pymysql.cursors.Cursor]:
        """An admin cursor holding the add-on's named lock, so a provision and a deprovision
        of one add-on (a retry racing a destroy) never interleave."""
        admin = self._admin
        try:
            conn = pymysql.connect(
                host=admin.host,
                port=admin.port,
                user=admin.user,
                password=admin.password,
                connect_timeout=self._connect_timeout,
                autocommit=True,
                charset="utf8mb4",
            )
            with conn, conn.cursor() as cur:
                # A DROP DATABASE waiting on a killed connection's locks gives up in time.
                cur.execute("SET SESSION lock_wait_timeout = %s", (_LOCK_TIMEOUT,))
                cur.execute("SELECT GET_LOCK(%s, %s)", (f"kapal:addon:{ident}", _LOCK_TIMEOUT))
                row = cur.fetchone()
                if not row or row[0] != 1:
                    raise ProvisionError("MySQL: another request is changing this add-on.")
                yield cur
        except pymysql.err.MySQLError as exc:
            # The server's messages name users and hosts, never passwords: the add-on's
            # password is never sent, only its hash.
            raise ProvisionError(f"MySQL: {_message(exc)}") from exc


def _plan(name: str) -> Plan:
    plan = MYSQL.plan(name)
    if plan is None:
        raise ValueError(f"unknown {MYSQL.name} plan {name!r}")
    return plan


def _message(exc: BaseException) -> str:
    args = exc.args
    text = str(args[1]) if len(args) > 1 else str(exc)
    text = text.strip()
    return text.splitlines()[0] if text else type(exc).__name__
