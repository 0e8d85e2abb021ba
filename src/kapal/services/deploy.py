"""Turn a built slug into a release: formation follows its process types."""

from __future__ import annotations

from kapal.services.context import Context
from kapal.services.formation import sync_formation
from kapal.services.releases import add_release, current_release, release_event
from kapal.store.models import App, Release, Slug, User


def release_slug(ctx: Context, app_id: str, user: User, slug_id: str) -> Release:
    """`Deploy abc1234`: the new slug with the current config."""
    with ctx.store.session() as s:
        app = s.get(App, app_id)
        slug = s.get(Slug, slug_id)
        if app is None or slug is None:
            raise LookupError("app or slug vanished during the build")
        current = current_release(s, app)
        sync_formation(s, app, slug.process_types)
        release = add_release(
            s,
            app,
            user,
            f"Deploy {(slug.commit or slug.id)[:8]}",
            slug_id=slug.id,
            config=dict(current.config) if current else {},
        )
    release_event(ctx, app, release, user)
    return release
