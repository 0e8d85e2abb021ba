"""Who may use which app: the one access check every use-case goes through."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.domain.errors import Forbidden, NotFound
from kapal.store.models import App, User

NOT_FOUND = "Couldn't find that app."


def find_app(s: Session, user: User, ident: str) -> App:
    """The app by name or id, if this user may use it."""
    app = s.scalar(select(App).where((App.name == ident) | (App.id == ident)))
    if app is None:
        raise NotFound(NOT_FOUND)
    if app.owner_id != user.id:
        raise Forbidden(f"You do not have access to the app {app.name}.")
    return app
