"""The storage quota of Postgres add-ons, on the server's side: how big each database is,
and refusing or allowing writes to it, as Heroku does with a database over its plan.

Over the quota the role loses INSERT and UPDATE on its tables and CREATE on its schemas and
database; SELECT, DELETE, TRUNCATE and VACUUM FULL stay, so its owner can make room. The
state lives in the server's own catalog: writes are refused exactly when the role lacks
CREATE on its database. Both changes write that marker last, so an interrupted one is seen
as not done, and done again by the next check.

Not airtight, and not meant to be: an owner may grant itself back what it lost (the next
check takes it away again), and some writes need no privilege (indexes on its own tables,
temporary tables, large objects). The quota stops an app from growing without bounds; it is
not a security boundary (the role's isolation is).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from kapal.addons import pgsql
from kapal.addons.pgserver import Connection, PostgresServer

log = logging.getLogger(__name__)

_STATES = """
SELECT d.datname, pg_database_size(d.oid), NOT has_database_privilege(r.oid, d.oid, 'CREATE')
FROM pg_database d JOIN pg_roles r ON r.rolname = d.datname
WHERE d.datname = ANY(%s)
"""
_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)
AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
ORDER BY 1, 2
"""
_SCHEMAS = """
SELECT nspname FROM pg_namespace
WHERE (nspowner = (SELECT oid FROM pg_roles WHERE rolname = %s) OR nspname = 'public')
AND nspname NOT LIKE 'pg\\_%%'
ORDER BY 1
"""


@dataclass(frozen=True)
class StorageState:
    size: int  # bytes, pg_database_size
    writes_refused: bool


class PostgresQuota:
    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def states(self, names: Collection[str]) -> dict[str, StorageState]:
        """By add-on name, for those whose role and database exist: one query for all."""
        idents = {pgsql.database_name(name): name for name in names}
        if not idents:
            return {}
        with self.server.connect() as conn:
            rows = conn.execute(_STATES, (list(idents),)).fetchall()
        return {
            idents[str(ident)]: StorageState(int(str(size)), bool(refused))
            for ident, size, refused in rows
        }

    def refuse_writes(self, name: str) -> None:
        """Take INSERT, UPDATE and CREATE away. Repeated while the database stays over its
        quota, it also takes away what the owner granted itself since, and covers new tables."""
        ident = pgsql.database_name(name)
        with self.server.connect(ident, lock=True) as conn:
            tables, schemas = _tables(conn, ident), _schemas(conn, ident)
            if tables:
                conn.execute(pgsql.revoke_table_writes(tables, ident))
            if schemas:
                owner_role = conn.info.server_version >= 140000
                conn.execute(
                    pgsql.revoke_schema_create(schemas, ident, database_owner_role=owner_role)
                )
            conn.execute(pgsql.revoke_database_create(ident, ident))  # the marker, last
        log.info("writes refused to the Postgres add-on %s", name)

    def allow_writes(self, name: str) -> None:
        """Give back what `refuse_writes` took."""
        ident = pgsql.database_name(name)
        with self.server.connect(ident, lock=True) as conn:
            tables, schemas = _tables(conn, ident), _schemas(conn, ident)
            if tables:
                conn.execute(pgsql.grant_table_writes(tables, ident))
            if schemas:
                conn.execute(pgsql.grant_schema_create(schemas, ident))
            conn.execute(pgsql.grant_database_create(ident, ident))  # the marker, last
        log.info("writes allowed again to the Postgres add-on %s", name)


def _tables(conn: Connection, role: str) -> list[tuple[str, str]]:
    """The role's own tables (those of extensions and of Kapal stay as they are)."""
    return [(str(s), str(t)) for s, t in conn.execute(_TABLES, (role,)).fetchall()]


def _schemas(conn: Connection, role: str) -> list[str]:
    return [str(s) for (s,) in conn.execute(_SCHEMAS, (role,)).fetchall()]
