"""Relative scaling (`ps:scale web+1`) on a PostgreSQL store: concurrent changes add up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select

from kapal.services import apps, auth, formation
from kapal.services.context import Context
from kapal.services.deploy import release_slug
from kapal.settings import Settings
from kapal.store.models import Formation, Slug


def test_concurrent_relative_scaling_loses_no_change(tmp_path: Path, postgres_url: str) -> None:
    ctx = Context.create(Settings(data_dir=tmp_path, database_url=postgres_url))
    try:
        user, _ = auth.signup(ctx, "pg@example.com", "password123")
        app = apps.create_app(ctx, user, "scaled")
        with ctx.store.session() as s:
            slug = Slug(app_id=app.id, checksum="SHA256:0", size=1, process_types={"web": "x"})
            s.add(slug)
        release_slug(ctx, app.id, user, slug.id)  # web=1

        def add_one(_: int) -> None:
            formation.scale(ctx, user, "scaled", [formation.Update("web", 1, op="+")])

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(add_one, range(8)))
        with ctx.store.session() as s:
            web = s.scalar(select(Formation.quantity).where(Formation.app_id == app.id))
        assert web == 9
    finally:
        ctx.close()
