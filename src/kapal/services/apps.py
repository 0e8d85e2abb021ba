"""Apps: create, find with an access check, list, destroy."""

from __future__ import annotations

import os
import shutil

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kapal.domain.errors import Conflict, InvalidParams
from kapal.domain.names import random_app_name, validate_app_name
from kapal.domain.uids import next_app_uid
from kapal.services.access import check_self, find_app
from kapal.services.addons import deprovision_app_addons
from kapal.services.context import Context
from kapal.services.releases import add_release
from kapal.store.models import App, User


def get_app(ctx: Context, user: User, ident: str) -> App:
    with ctx.store.session() as s:
        return find_app(s, user, ident)


def list_apps(ctx: Context, user: User) -> list[App]:
    with ctx.store.session() as s:
        return list(s.scalars(select(App).where(App.owner_id == user.id).order_by(App.name)))


def list_user_apps(ctx: Context, user: User, who: str) -> list[App]:
    """`GET /users/{who}/apps`: the apps of `who` (`~`, the user's id or email), as list_apps."""
    check_self(user, who)
    return list_apps(ctx, user)


def repo_size(ctx: Context, app: App) -> int | None:
    """Bytes of the app's bare git repository on disk; None before its first push."""
    root = ctx.settings.repos_dir / f"{app.name}.git"
    if not root.is_dir():
        return None
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # git removed it meanwhile (gc, a finished push)
                continue
    return total


def create_app(ctx: Context, user: User, name: str | None = None) -> App:
    """A new app with Heroku's first two releases; a random name when none is given."""
    if name is not None and name != "":
        validate_app_name(name)
    try:
        with ctx.store.session() as s:
            if name:
                if s.scalar(select(App.id).where(App.name == name)) is not None:
                    raise Conflict(f"Name {name} is already taken.")
            else:
                name = _free_random_name(s)
            highest = s.scalar(select(func.max(App.uid)))
            app = App(name=name, owner_id=user.id, uid=next_app_uid(highest))
            s.add(app)
            s.flush()
            first = add_release(s, app, user, "Initial release", slug_id=None, config={})
            second = add_release(s, app, user, "Enable Logplex", slug_id=None, config={})
    except IntegrityError:  # the same name taken at the same moment
        raise Conflict(f"Name {name} is already taken.") from None
    for release in (first, second):
        ctx.event(app.id, f"{release.description} by user {user.email}")
        ctx.event(app.id, f"Release v{release.version} created by user {user.email}")
    return app


def _free_random_name(s: Session) -> str:
    for _ in range(20):
        name = random_app_name()
        if s.scalar(select(App.id).where(App.name == name)) is None:
            return name
    raise Conflict("Could not find a free app name; please choose one.")


def set_maintenance(ctx: Context, user: User, ident: str, on: bool) -> App:
    """Maintenance mode: the router answers with a maintenance page (H80); dynos keep running."""
    with ctx.store.session() as s:
        app = find_app(s, user, ident)
        changed = app.maintenance != on
        app.maintenance = on
    if changed:
        ctx.event(app.id, f"{'Enable' if on else 'Disable'} maintenance mode by user {user.email}")
        ctx.wake()
    return app


def destroy_app(ctx: Context, user: User, ident: str, confirm: str | None = None) -> App:
    """Delete the app, its add-ons and its repository; the agent stops its dynos."""
    with ctx.store.session() as s:
        app = find_app(s, user, ident)
        if confirm is not None and confirm != app.name:
            raise InvalidParams(f"Confirmation {confirm!r} did not match app name {app.name!r}.")
    # Databases first: deleting the app cascades to the add-on rows that name them.
    deprovision_app_addons(ctx, app.id)
    with ctx.store.session() as s:
        app = find_app(s, user, ident)
        s.delete(app)
    shutil.rmtree(ctx.settings.repos_dir / f"{app.name}.git", ignore_errors=True)
    shutil.rmtree(ctx.settings.build_cache(app.id), ignore_errors=True)
    ctx.wake()
    return app
