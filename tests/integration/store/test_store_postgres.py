"""KAPAL_DATABASE_URL may name a PostgreSQL database: the same migrations and use-cases work.

Uses a scratch database on the machine's PostgreSQL (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql

from kapal.services import apps, auth, config
from kapal.services.context import Context
from kapal.services.releases import current_release
from kapal.settings import Settings
from kapal.store.models import Base

SERVER = os.environ.get("KAPAL_TEST_STORE_SERVER", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture
def database_url() -> Iterator[str]:
    name = f"kapal_store_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        pytest.fail(f"this test needs PostgreSQL at {SERVER} (KAPAL_TEST_STORE_SERVER): {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"{SERVER}/{name}"
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_state_store_on_postgresql(tmp_path: Path, database_url: str) -> None:
    ctx = Context.create(Settings(data_dir=tmp_path, database_url=database_url))
    try:
        with ctx.store.engine.connect() as connection:
            migration = MigrationContext.configure(connection)
            assert compare_metadata(migration, Base.metadata) == []
        user, token = auth.signup(ctx, "pg@example.com", "password123")
        assert auth.authenticate(ctx, token).id == user.id
        app = apps.create_app(ctx, user, "on-postgres")
        config.update_config(ctx, user, "on-postgres", {"A": "1"})
        with ctx.store.session() as s:
            release = current_release(s, app)
        assert release is not None and (release.version, release.config) == (3, {"A": "1"})
        assert release.created_at.tzinfo is not None
        with ctx.store.snapshot() as s:  # what the router and the agent read with
            seen = current_release(s, app)
        assert seen is not None and (seen.id, seen.version) == (release.id, 3)
    finally:
        ctx.close()
