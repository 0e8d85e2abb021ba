"""The Postgres provisioner: one role and one database per add-on, reachable only by it."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict

from kapal.addons import pgsql
from kapal.addons.catalog import POSTGRESQL, Plan
from kapal.addons.errors import ProvisionError

log = logging.getLogger(__name__)

# Serialises Kapal's provisioners on one server: concurrent GRANT/REVOKE on the same
# database row fails with "tuple concurrently updated".
_ADVISORY_LOCK = 0x6B6170616C
_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


class PostgresProvisioner:
    """Provisions add-on databases through an admin (superuser) connection URL."""

    def __init__(self, admin_url: str, *, connect_timeout: int = 10) -> None:
        self._admin_url = admin_url
        self._connect_timeout = connect_timeout
        params = conninfo_to_dict(admin_url)
        host = str(params.get("host") or "")
        # Apps get `localhost`: the Heroku CLI's pg:psql only skips TLS for that name.
        self.public_host = "localhost" if host in _LOCAL_HOSTS or host.startswith("/") else host
        self.public_port = int(params.get("port") or 5432)

    def provision(self, name: str, plan: str) -> dict[str, str]:
        """Create (or finish creating) the add-on's role and database; returns {"URL": ...}."""
        limit = _plan(plan).connection_limit
        ident = pgsql.database_name(name)
        password = secrets.token_urlsafe(24)
        verifier = pgsql.scram_verifier(password)
        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ident,)).fetchone()
            # A role left by a crashed attempt is reused with a new password: nobody has
            # seen the old one, since the URL is only stored once provisioning finished.
            statement = pgsql.alter_role if exists else pgsql.create_role
            conn.execute(statement(ident, verifier, limit))
            has_db = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (ident,)
            ).fetchone()
            if has_db:
                conn.execute(pgsql.alter_database_owner(ident, ident))
            else:
                conn.execute(pgsql.create_database(ident, ident))
            self._isolate(conn, ident)
        log.info("provisioned Postgres database for add-on %s", name)
        url = pgsql.database_url(ident, password, self.public_host, self.public_port, ident)
        return {"URL": url}

    def deprovision(self, name: str) -> None:
        """Drop the add-on's database (ending its connections) and role; missing is fine."""
        ident = pgsql.database_name(name)
        with self._admin() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ident,)).fetchone():
                conn.execute(pgsql.disable_login(ident))
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = %s OR datname = %s",
                    (ident, ident),
                )
            force = conn.info.server_version >= 130000
            conn.execute(pgsql.drop_database(ident, force=force))
            conn.execute(pgsql.drop_role(ident))
        log.info("deprovisioned Postgres database of add-on %s", name)

    def _isolate(self, conn: psycopg.Connection[tuple[object, ...]], own: str) -> None:
        """Take PUBLIC's CONNECT away from every database on the server, so a role reaches
        only its own (PostgreSQL's default lets every role into `postgres`)."""
        conn.execute(pgsql.revoke_public(own))
        others = conn.execute(
            "SELECT datname FROM pg_database WHERE datname <> %s "
            "AND (has_database_privilege('public', oid, 'CONNECT') "
            "OR has_database_privilege('public', oid, 'TEMPORARY'))",
            (own,),
        ).fetchall()
        for (database,) in others:
            with contextlib.suppress(psycopg.errors.InvalidCatalogName):  # dropped meanwhile
                conn.execute(pgsql.revoke_public(str(database)))

    @contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        try:
            with psycopg.connect(
                self._admin_url, autocommit=True, connect_timeout=self._connect_timeout
            ) as conn:
                conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK,))
                yield conn
        except psycopg.Error as exc:
            # psycopg's messages name host and port, never the password.
            raise ProvisionError(f"PostgreSQL: {_first_line(exc)}") from exc


def _plan(name: str) -> Plan:
    plan = POSTGRESQL.plan(name)
    if plan is None:
        raise ValueError(f"unknown {POSTGRESQL.name} plan {name!r}")
    return plan


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
