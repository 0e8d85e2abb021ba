from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kapal.store.db import Store, postgres_driver_url
from kapal.store.models import Base


def test_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/state.db")
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    store.engine.dispose()


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    Store.open(f"sqlite:///{tmp_path}/state.db").engine.dispose()
    Store.open(f"sqlite:///{tmp_path}/state.db").engine.dispose()


def test_postgres_urls_use_psycopg() -> None:
    assert postgres_driver_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert postgres_driver_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert postgres_driver_url("sqlite:///x") == "sqlite:///x"
