"""Pure pieces of the Postgres provisioner: names, SQL (identifiers quoted by psycopg),
password verifiers and the URL handed to apps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from urllib.parse import quote

from psycopg import sql

# Add-on names are validated upstream; this second check keeps the derived identifiers
# plain (unquoted-friendly in psql) and one-to-one with add-on names.
_SAFE_NAME = re.compile(r"^[a-z][a-z0-9-]{1,55}$")
SCRAM_ITERATIONS = 4096


def database_name(addon_name: str) -> str:
    """The role and database of an add-on: postgresql-silent-12345 -> kapal_postgresql_silent_12345.

    The prefix keeps add-on roles apart from `postgres` and other roles on a shared server.
    """
    if not _SAFE_NAME.match(addon_name):
        raise ValueError(f"not a valid add-on name: {addon_name!r}")
    return "kapal_" + addon_name.replace("-", "_")


def database_url(user: str, password: str, host: str, port: int, database: str) -> str:
    """`postgres://` (not postgresql://): Heroku's scheme, which its CLI's pg:psql requires."""

    def q(text: str) -> str:
        return quote(text, safe="")

    return f"postgres://{q(user)}:{q(password)}@{host}:{port}/{q(database)}"


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """A SCRAM-SHA-256 verifier (RFC 5803 form, as PostgreSQL stores it), so the plain
    password never reaches the server, its logs or pg_stat_activity."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def create_role(role: str, verifier: str, connection_limit: int) -> sql.Composed:
    return sql.SQL(
        "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
        "CONNECTION LIMIT {} PASSWORD {}"
    ).format(sql.Identifier(role), sql.Literal(connection_limit), sql.Literal(verifier))


def alter_role(role: str, verifier: str, connection_limit: int) -> sql.Composed:
    """Reuse a role a crashed attempt left behind, with a fresh password."""
    return sql.SQL(
        "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
        "CONNECTION LIMIT {} PASSWORD {}"
    ).format(sql.Identifier(role), sql.Literal(connection_limit), sql.Literal(verifier))


def create_database(database: str, owner: str) -> sql.Composed:
    return sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
        sql.Identifier(database), sql.Identifier(owner)
    )


def alter_database_owner(database: str, owner: str) -> sql.Composed:
    return sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
        sql.Identifier(database), sql.Identifier(owner)
    )


def revoke_public(database: str) -> sql.Composed:
    """PostgreSQL lets every role connect to every database by default; take that away."""
    return sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))


def disable_login(role: str) -> sql.Composed:
    return sql.SQL("ALTER ROLE {} WITH NOLOGIN").format(sql.Identifier(role))


def drop_database(database: str, *, force: bool) -> sql.Composed:
    suffix = sql.SQL(" WITH (FORCE)") if force else sql.SQL("")
    return sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(database), suffix)


def drop_role(role: str) -> sql.Composed:
    return sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role))


def set_password(role: str, verifier: str) -> sql.Composed:
    return sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(verifier)
    )


# The storage quota. The role owns its database, schemas and tables, and an owner's
# privileges are ordinary ACL entries: revoking them from it works (as a read-only table
# for its own owner does). Anyone the role could grant to (PUBLIC; pg_database_owner, through
# which a database's owner holds CREATE on `public` since PostgreSQL 15) loses them too.


def revoke_table_writes(tables: list[tuple[str, str]], role: str) -> sql.Composed:
    """INSERT and UPDATE (which writes a new row version, as INSERT does) taken away;
    SELECT, DELETE and TRUNCATE stay, so the owner can make room."""
    return sql.SQL("REVOKE INSERT, UPDATE ON TABLE {} FROM {}, PUBLIC").format(
        _tables(tables), sql.Identifier(role)
    )


def grant_table_writes(tables: list[tuple[str, str]], role: str) -> sql.Composed:
    return sql.SQL("GRANT INSERT, UPDATE ON TABLE {} TO {}").format(
        _tables(tables), sql.Identifier(role)
    )


def revoke_schema_create(
    schemas: list[str], role: str, *, database_owner_role: bool
) -> sql.Composed:
    """No new tables. `database_owner_role`: the server has pg_database_owner (14+)."""
    grantees = [sql.Identifier(role), sql.SQL("PUBLIC")]
    if database_owner_role:
        grantees.append(sql.Identifier("pg_database_owner"))
    return sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(
        sql.SQL(", ").join(sql.Identifier(s) for s in schemas), sql.SQL(", ").join(grantees)
    )


def grant_schema_create(schemas: list[str], role: str) -> sql.Composed:
    return sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(
        sql.SQL(", ").join(sql.Identifier(s) for s in schemas), sql.Identifier(role)
    )


def revoke_database_create(database: str, role: str) -> sql.Composed:
    """No new schemas. Whether the role holds CREATE on its database is the recorded state:
    writes are refused exactly when it does not."""
    return sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}, PUBLIC").format(
        sql.Identifier(database), sql.Identifier(role)
    )


def grant_database_create(database: str, role: str) -> sql.Composed:
    return sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
        sql.Identifier(database), sql.Identifier(role)
    )


def _tables(tables: list[tuple[str, str]]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(schema, name) for schema, name in tables)
