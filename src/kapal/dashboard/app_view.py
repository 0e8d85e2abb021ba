"""Everything the app page shows, gathered through the services' access-checked use-cases."""

from __future__ import annotations

from dataclasses import dataclass

from kapal.domain.formation import DYNO_SIZES, display_size
from kapal.services.access import find_app
from kapal.services.addons import AddonView, list_addons
from kapal.services.config import get_config
from kapal.services.context import Context
from kapal.services.dynos import list_dynos
from kapal.services.formation import list_formation
from kapal.services.releases import current_release, list_releases
from kapal.store.models import App, Dyno, Release, User

# (value, label) for the size select of the scale form.
SIZES = [(key, display) for key, (display, _mb) in DYNO_SIZES.items()]


@dataclass(frozen=True)
class ReleaseRow:
    release: Release
    by: str
    current: bool


@dataclass(frozen=True)
class FormationRow:
    type: str
    command: str
    quantity: int
    size: str
    size_name: str


@dataclass(frozen=True)
class AppView:
    app: App
    web_url: str
    git_url: str
    dynos: list[Dyno]
    formation: list[FormationRow]
    config: dict[str, str]
    releases: list[ReleaseRow]  # newest first
    addons: list[AddonView]  # names and plans only: an add-on's own config is secret


def load_app_view(ctx: Context, user: User, ident: str) -> AppView:
    """The app page's data; Forbidden or NotFound when this user may not see the app."""
    with ctx.store.session() as s:
        app = find_app(s, user, ident)
        live = current_release(s, app)
        emails: dict[str | None, str] = {}
        rows = []
        for release in reversed(list_releases(s, app)):
            if release.user_id not in emails:
                author = s.get(User, release.user_id) if release.user_id else None
                emails[release.user_id] = author.email if author else "Kapal"
            current = live is not None and live.id == release.id
            rows.append(ReleaseRow(release, emails[release.user_id], current))
    formation, types = list_formation(ctx, user, app.id)
    return AppView(
        app=app,
        web_url=ctx.settings.web_url(app.name),
        git_url=ctx.settings.git_url(app.name),
        dynos=list_dynos(ctx, user, app.id),
        formation=[
            FormationRow(f.type, types.get(f.type, ""), f.quantity, f.size, display_size(f.size))
            for f in formation
        ],
        config=get_config(ctx, user, app.id),
        releases=rows,
        addons=list_addons(ctx, user, app.id),
    )
