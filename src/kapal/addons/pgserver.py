"""Superuser connections to the PostgreSQL server that holds the add-on databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psycopg
from psycopg.conninfo import make_conninfo

from kapal.addons.errors import ProvisionError

# Serialises Kapal's changes on one server: concurrent GRANT/REVOKE on the same database
# row fails with "tuple concurrently updated". Advisory locks belong to the database they
# are taken in, so the lock is always taken in the admin URL's own database.
ADVISORY_LOCK = 0x6B6170616C
# How Kapal's own sessions show in pg_stat_activity.
APPLICATION_NAME = "kapal"

Connection = psycopg.Connection[tuple[object, ...]]


class PostgresServer:
    """Opens autocommit connections as the admin (superuser) URL's role."""

    def __init__(self, admin_url: str, *, connect_timeout: int = 10) -> None:
        self.admin_url = admin_url
        self.connect_timeout = connect_timeout

    @contextmanager
    def connect(self, database: str | None = None, *, lock: bool = False) -> Iterator[Connection]:
        """A connection to `database` (default: the admin URL's). With `lock`, Kapal's
        advisory lock is held until it closes; psycopg errors become ProvisionError."""
        try:
            with ExitStack() as stack:
                conn = None
                if lock or database is None:
                    conn = stack.enter_context(self._open(None))
                    if lock:
                        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK,))
                if database is not None:
                    conn = stack.enter_context(self._open(database))
                assert conn is not None
                yield conn
        except psycopg.Error as exc:
            # psycopg's messages name host and port, never the password.
            raise ProvisionError(f"PostgreSQL: {first_line(exc)}") from exc

    def _open(self, database: str | None) -> Connection:
        url = self.admin_url if database is None else make_conninfo(self.admin_url, dbname=database)
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=self.connect_timeout,
            application_name=APPLICATION_NAME,
        )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
