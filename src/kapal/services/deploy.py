"""Turn a built slug into a release: formation follows its process types."""

from __future__ import annotations

from kapal.services.context import Context
from kapal.services.formation import sync_formation
from kapal.services.releases import derive_release, release_base, release_event
from kapal.store.models import App, Release, Slug, User


def release_slug(ctx: Context, app_id: str, user: User, slug_id: str) -> Release:
    """`Deploy abc1234`: the new slug with the current config."""
    with ctx.store.session() as s:
        app = s.get(App, app_id)
        slug = s.get(Slug, slug_id)
        if app is None or slug is None:
            raise LookupError("app or slug vanished during the build")
        base = release_base(s, app)
        sync_formation(s, app, slug.process_types)
        description = f"Deploy {(slug.commit or slug.id)[:8]}"
        release = derive_release(s, app, user, description, base=base, slug_id=slug.id)
    release_event(ctx, app, release, user)
    return release
