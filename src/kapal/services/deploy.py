"""Turn a built slug into a release: formation follows its process types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.domain.errors import Conflict
from kapal.services.context import Context
from kapal.services.formation import Update, set_formation, sync_formation
from kapal.services.releases import derive_release, release_base, release_event
from kapal.store.models import App, Release, Slug, User


@dataclass(frozen=True)
class Initial:
    """What an app's first deploy sets besides its slug (from app.json): config vars the app
    does not have yet, and the formation its process types start with."""

    config: Mapping[str, str] = field(default_factory=dict, repr=False)  # secrets
    formation: tuple[Update, ...] = ()


def deployed(s: Session, app: App) -> bool:
    """Whether a slug of the app was released already (live, or in its release phase)."""
    query = select(Release.id).where(
        Release.app_id == app.id, Release.slug_id.is_not(None), Release.status != "failed"
    )
    return s.scalar(query.limit(1)) is not None


def release_slug(
    ctx: Context, app_id: str, user: User, slug_id: str, *, initial: Initial | None = None
) -> Release:
    """`Deploy abc1234`: the new slug with the current config. With `initial`, it must be
    the app's first deploy (Conflict otherwise), and sets what `initial` holds too."""
    with ctx.store.session() as s:
        app = s.get(App, app_id)
        slug = s.get(Slug, slug_id)
        if app is None or slug is None:
            raise LookupError("app or slug vanished during the build")
        base = release_base(s, app)
        config = None
        if initial is not None:
            if deployed(s, app):
                raise Conflict(
                    f"Another deploy of {app.name} went first; app.json applies to the first "
                    "deploy only. Push again."
                )
            # A var set since app.json was read keeps its value.
            config = {**initial.config, **(base.config if base else {})}
        sync_formation(s, app, slug.process_types)
        if initial is not None:
            set_formation(s, app, initial.formation)
        description = f"Deploy {(slug.commit or slug.id)[:8]}"
        release = derive_release(
            s, app, user, description, base=base, slug_id=slug.id, config=config
        )
    release_event(ctx, app, release, user)
    return release
