"""The Postgres provisioner: one role and one database per add-on, reachable only by it."""

from __future__ import annotations

import contextlib
import logging
import secrets

import psycopg
from psycopg.conninfo import conninfo_to_dict

from kapal.addons import pgsql
from kapal.addons.catalog import POSTGRESQL, Plan
from kapal.addons.errors import ProvisionError
from kapal.addons.pgserver import Connection, PostgresServer

log = logging.getLogger(__name__)

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


class PostgresProvisioner:
    """Provisions add-on databases through an admin (superuser) connection URL."""

    def __init__(self, admin_url: str, *, connect_timeout: int = 10) -> None:
        self.server = PostgresServer(admin_url, connect_timeout=connect_timeout)
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
        with self.server.connect(lock=True) as conn:
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
        with self.server.connect(lock=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ident,)).fetchone():
                conn.execute(pgsql.disable_login(ident))
                _end_sessions(conn, ident)
            _drop_database(conn, ident)
            conn.execute(pgsql.drop_role(ident))
        log.info("deprovisioned Postgres database of add-on %s", name)

    def new_credentials(self, name: str) -> dict[str, str]:
        """The add-on's config with a fresh password, which the server does not know yet
        (`apply_credentials` tells it): a caller can store it durably first."""
        ident = pgsql.database_name(name)
        password = secrets.token_urlsafe(24)
        return {
            "URL": pgsql.database_url(ident, password, self.public_host, self.public_port, ident)
        }

    def apply_credentials(self, name: str, config: dict[str, str]) -> None:
        """Make the password in config["URL"] the role's only one and end the role's sessions,
        which logged in with the old one. Repeating it changes nothing more."""
        ident = pgsql.database_name(name)
        password = conninfo_to_dict(config["URL"]).get("password")
        if not isinstance(password, str) or not password:
            raise ValueError(f"the URL for {name} has no password")
        with self.server.connect(lock=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ident,)).fetchone():
                raise ProvisionError(f"the role of {name} is missing on the server")
            conn.execute(pgsql.set_password(ident, pgsql.scram_verifier(password)))
            _end_sessions(conn, ident, in_database=False)
        log.info("new credentials for Postgres add-on %s", name)

    def reset(self, name: str) -> None:
        """Drop the add-on's database and make it again, empty: same role, same URL.
        An interrupted reset is finished by running it again."""
        ident = pgsql.database_name(name)
        with self.server.connect(lock=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ident,)).fetchone():
                raise ProvisionError(f"the role of {name} is missing on the server")
            _end_sessions(conn, ident)
            _drop_database(conn, ident)
            conn.execute(pgsql.create_database(ident, ident))
            self._isolate(conn, ident)
        log.info("reset Postgres database of add-on %s", name)

    def _isolate(self, conn: Connection, own: str) -> None:
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


def _end_sessions(conn: Connection, ident: str, *, in_database: bool = True) -> None:
    """Terminate the sessions of the add-on's role, and with `in_database` every session in
    its database (Kapal's own too)."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE (usename = %s OR (%s AND datname = %s)) AND pid <> pg_backend_pid()",
        (ident, in_database, ident),
    )


def _drop_database(conn: Connection, ident: str) -> None:
    force = conn.info.server_version >= 130000
    conn.execute(pgsql.drop_database(ident, force=force))


def _plan(name: str) -> Plan:
    plan = POSTGRESQL.plan(name)
    if plan is None:
        raise ValueError(f"unknown {POSTGRESQL.name} plan {name!r}")
    return plan
