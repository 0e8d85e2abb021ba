"""Engine and sessions; migrations run through Alembic on start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_MIGRATIONS = Path(__file__).parent / "migrations"
SNAPSHOT = "kapal_snapshot"  # execution option: a read-only transaction (Store.snapshot)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None stops pysqlite from starting transactions lazily at the first
        # write (its reads would then see other writers' commits mid-transaction); the
        # "begin" hook starts each one with the write lock taken, so read-modify-write
        # use-cases are serialised instead of losing each other's updates. Snapshots
        # (Store.snapshot) take no lock: the router and the agent read every second and on
        # every wake-up, and waiting behind a writer there delays a deploy's switch-over.
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False, "isolation_level": None},
        )

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A snapshot only reads: in WAL mode a deferred BEGIN never waits for a writer.
            snapshot = conn.get_execution_options().get(SNAPSHOT, False)
            conn.exec_driver_sql("BEGIN" if snapshot else "BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cursor = conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(postgres_driver_url(url), pool_pre_ping=True)


def postgres_driver_url(url: str) -> str:
    """`postgres://` and `postgresql://` URLs use psycopg 3, the driver Kapal installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision."""
    # Imported here: Alembic (with Mako) is ~11 MB of memory that processes which never
    # migrate, such as the agent (issue 4), should not carry.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class ReadOnlySnapshot(RuntimeError):
    """Something was added, changed or deleted in a session opened with Store.snapshot()."""


class Store:
    """The state store: a session factory over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._snapshots = sessionmaker(
            engine.execution_options(**{SNAPSHOT: True}), autoflush=False, expire_on_commit=False
        )

    @property
    def url(self) -> str:
        """The database URL, password included: for what connects without SQLAlchemy."""
        return self.engine.url.render_as_string(hide_password=False)

    @classmethod
    def open(cls, url: str) -> Store:
        """The store at `url`, its schema migrated to the newest revision first."""
        engine = make_engine(url)
        migrate(engine)
        return cls(engine)

    @classmethod
    def connect(cls, url: str) -> Store:
        """The store at `url` as it is: for processes started after `kapal up` migrated it."""
        return cls(make_engine(url))

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """One read-only transaction: a consistent view that never waits for a writer
        (SQLite in WAL mode). Writing in it is a bug, refused before anything is sent."""
        with self._snapshots() as session, session.begin():
            yield session
            if session.new or session.dirty or session.deleted:
                raise ReadOnlySnapshot("a snapshot session was asked to write")
