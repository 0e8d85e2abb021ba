"""The store through the DB-API alone (sqlite3, psycopg), for processes that cannot afford
SQLAlchemy (with the models, 24 MB): the agent (issue 4: 40 MB with 50 dynos) and the router
(issue 5: 30 MB per process).

Transactions behave as `Store.session` and `Store.snapshot` do (kapal.store.db), and values
are stored as the models store them: datetimes naive in UTC (as text on SQLite, in SQLAlchemy's
format), JSON as text on SQLite, string ids from `new_id`. SQL is written with `?`
placeholders for both drivers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

# SQLAlchemy's storage format for DateTime on SQLite: microseconds always written.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


class _Connection(Protocol):
    """What both drivers' connections offer that is used here."""

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


class Transaction:
    """Statements in one transaction; aware datetimes in parameters are stored as the models
    store them."""

    def __init__(self, cursor: Any, sqlite: bool) -> None:
        self._cursor = cursor
        self._sqlite = sqlite

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        self.run(sql, *params)
        return list(self._cursor.fetchall())

    def row(self, sql: str, *params: object) -> tuple[Any, ...] | None:
        self.run(sql, *params)
        found: tuple[Any, ...] | None = self._cursor.fetchone()
        return found

    def run(self, sql: str, *params: object) -> int:
        """Execute one statement; the number of rows it changed."""
        self._cursor.execute(self._sql(sql), [self._bind(p) for p in params])
        return int(self._cursor.rowcount)

    def run_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), [[self._bind(p) for p in r] for r in rows])

    def _sql(self, sql: str) -> str:
        return sql if self._sqlite else sql.replace("?", "%s")

    def _bind(self, value: object) -> object:
        if isinstance(value, datetime):
            naive = value.astimezone(UTC).replace(tzinfo=None)  # as UTCDateTime binds it
            return naive.strftime(SQLITE_DATETIME) if self._sqlite else naive
        return value


def moment(value: datetime | str) -> datetime:
    """A stored datetime, timezone-aware (UTCDateTime's result)."""
    if isinstance(value, str):  # SQLite
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def moment_or_none(value: datetime | str | None) -> datetime | None:
    return None if value is None else moment(value)


def json_value(value: object) -> Any:
    """A stored JSON column's value (psycopg decodes PostgreSQL's json type itself)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


class Database:
    """Connections to the store at one URL, reused across threads: one per transaction in
    progress, as SQLAlchemy's pool does, so a snapshot never queues behind a write."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            self._path: str | None = url.removeprefix("sqlite:///")
            self._conninfo = ""
        elif url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://")):
            self._path = None
            self._conninfo = "postgresql://" + url.split("://", 1)[1]
        else:
            raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    @property
    def sqlite(self) -> bool:
        return self._path is not None

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """One transaction: committed on success, rolled back on error. On SQLite it takes the
        write lock first, so read-modify-write steps of concurrent writers are serialised."""
        with self._transaction("BEGIN IMMEDIATE" if self.sqlite else "BEGIN") as tx:
            yield tx

    @contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        """One read-only transaction: a consistent view that never waits for a writer."""
        begin = "BEGIN" if self.sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        with self._transaction(begin) as tx:
            yield tx

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Transaction]:
        connection = self._checkout()
        cursor = connection.cursor()
        ended = False
        try:
            cursor.execute(begin)
            try:
                yield Transaction(cursor, self.sqlite)
            except BaseException:
                cursor.execute("ROLLBACK")
                ended = True
                raise
            cursor.execute("COMMIT")
            ended = True
        finally:
            cursor.close()
            if ended:
                with self._lock:
                    self._idle.append(connection)
            else:
                connection.close()  # its transaction may still be open, or the server gone

    def _checkout(self) -> _Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _connect(self) -> _Connection:
        if self._path is not None:
            return _sqlite_connection(self._path)
        import psycopg  # ~14 MB: only where the store is PostgreSQL

        # Autocommit: transactions are begun and ended by the statements above, as on SQLite.
        return psycopg.connect(self._conninfo, autocommit=True)


def _sqlite_connection(path: str) -> _Connection:
    import sqlite3

    # As kapal.store.db.make_engine: no implicit transactions (each is begun explicitly),
    # WAL, foreign keys on (ON DELETE CASCADE relies on them), waits for a writer's lock.
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=30000")
    return connection
