"""An app's buildpacks: the URLs its next build runs, in order (no release, as on Heroku)."""

from __future__ import annotations

from kapal.domain.buildpacks import validate_buildpacks
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.models import User


def get_buildpacks(ctx: Context, user: User, app_ident: str) -> list[str]:
    with ctx.store.session() as s:
        return list(find_app(s, user, app_ident).buildpacks)


def set_buildpacks(ctx: Context, user: User, app_ident: str, urls: list[str]) -> list[str]:
    """Replace the app's list; an empty list returns it to detection."""
    urls = validate_buildpacks(urls)
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        app.buildpacks = urls
    return urls
