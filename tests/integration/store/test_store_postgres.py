"""KAPAL_DATABASE_URL may name a PostgreSQL database: the same migrations and use-cases work.

Uses a scratch database on the machine's PostgreSQL (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kapal.services import apps, auth, config
from kapal.services.context import Context
from kapal.services.releases import current_release
from kapal.settings import Settings
from kapal.store.models import Base


def test_the_state_store_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    ctx = Context.create(Settings(data_dir=tmp_path, database_url=postgres_url))
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
