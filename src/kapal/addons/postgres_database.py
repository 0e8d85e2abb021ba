"""One Postgres add-on's database seen from the server's side: its figures (`pg:info`), its
sessions (`pg:ps`) and ending them (`pg:kill`).

Sessions are always those of the add-on's own role in its own database: Kapal's
connections (superuser) never show, and no pid of anyone else's can be signalled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kapal.addons import pgsql
from kapal.addons.pgserver import PostgresServer

_INFO = """
SELECT current_setting('server_version'), pg_database_size(d.oid),
  (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = r.rolname),
  r.rolconnlimit,
  NOT has_database_privilege(r.oid, d.oid, 'CREATE'),
  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%')
FROM pg_database d JOIN pg_roles r ON r.rolname = d.datname
WHERE d.datname = current_database()
"""
_SESSIONS = """
SELECT pid, coalesce(state, ''), query_start,
  extract(epoch FROM clock_timestamp() - query_start)::float8,
  coalesce(wait_event_type = 'Lock', false), coalesce(query, ''), application_name
FROM pg_stat_activity
WHERE datname = %s AND usename = %s AND backend_type = 'client backend'
ORDER BY query_start NULLS LAST, pid
"""
_SIGNAL = "FROM pg_stat_activity WHERE pid = %s AND datname = %s AND usename = %s"
_CANCEL = "SELECT pg_cancel_backend(pid) " + _SIGNAL
_TERMINATE = "SELECT pg_terminate_backend(pid) " + _SIGNAL


@dataclass(frozen=True)
class DatabaseInfo:
    version: str  # 16.4
    size: int  # bytes
    connections: int  # the role's sessions
    connection_limit: int  # the role's; -1: none
    writes_refused: bool  # over the storage quota (kapal.addons.postgres_quota)
    tables: int


@dataclass(frozen=True)
class Backend:
    """One session of the add-on's role: a process of the server."""

    pid: int
    state: str  # active, idle, idle in transaction...
    query_start: datetime | None
    running_for: float | None  # seconds since query_start
    waiting: bool  # for a lock
    query: str  # the running query, or the last one
    application_name: str


class PostgresDatabase:
    def __init__(self, server: PostgresServer, addon_name: str) -> None:
        self.server = server
        self.name = addon_name
        self.ident = pgsql.database_name(addon_name)

    def info(self) -> DatabaseInfo:
        with self.server.connect(self.ident) as conn:
            row = conn.execute(_INFO).fetchone()
        assert row is not None  # the database we are connected to exists
        version, size, connections, limit, refused, tables = row
        return DatabaseInfo(
            version=str(version).split()[0],
            size=int(str(size)),
            connections=int(str(connections)),
            connection_limit=int(str(limit)),
            writes_refused=bool(refused),
            tables=int(str(tables)),
        )

    def backends(self, *, include_idle: bool = False) -> list[Backend]:
        with self.server.connect() as conn:
            rows = conn.execute(_SESSIONS, (self.ident, self.ident)).fetchall()
        found = [
            Backend(
                pid=int(str(pid)),
                state=str(state),
                query_start=start if isinstance(start, datetime) else None,
                running_for=float(str(seconds)) if seconds is not None else None,
                waiting=bool(waiting),
                query=str(query),
                application_name=str(application or ""),
            )
            for pid, state, start, seconds, waiting, query, application in rows
        ]
        return found if include_idle else [b for b in found if b.state != "idle"]

    def signal(self, pid: int, *, terminate: bool) -> bool | None:
        """Cancel the session's query, or end the session; None when `pid` is no session of
        this add-on (whether it exists elsewhere is not told), else whether it was signalled."""
        query = _TERMINATE if terminate else _CANCEL
        with self.server.connect() as conn:
            row = conn.execute(query, (pid, self.ident, self.ident)).fetchone()
        return None if row is None else bool(row[0])
