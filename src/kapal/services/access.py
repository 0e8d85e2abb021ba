"""Who may use which app: the one access check every use-case goes through."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.domain.errors import Forbidden, NotFound
from kapal.store.models import App, User

NOT_FOUND = "Couldn't find that app."
USER_NOT_FOUND = "Couldn't find that user."


def may_use(user: User, app: App) -> bool:
    """Whether the user may see and change the app (its owner: Kapal has no collaborators)."""
    return app.owner_id == user.id


def check_self(user: User, ident: str) -> None:
    """`~`, the user's id or email name the user; any other user is not found (Heroku's
    answer for a user one cannot see)."""
    if ident not in ("~", user.id) and ident.lower() != user.email.lower():
        raise NotFound(USER_NOT_FOUND)


def find_app(s: Session, user: User, ident: str) -> App:
    """The app by name or id, if this user may use it."""
    app = s.scalar(select(App).where((App.name == ident) | (App.id == ident)))
    if app is None:
        raise NotFound(NOT_FOUND)
    if not may_use(user, app):
        raise Forbidden(f"You do not have access to the app {app.name}.")
    return app
