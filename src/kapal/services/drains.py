"""Log drains: where an app's log lines are also sent (Heroku's log-drain). The agent reads
this table and delivers (kapal.logs.drains)."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kapal.domain.drains import new_token, parse_drain_url, redact
from kapal.domain.errors import InvalidParams, NotFound
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.models import App, LogDrain, User

MAX_DRAINS = 5  # per app: each one is a connection and a buffer in the agent


def list_drains(ctx: Context, user: User, app_ident: str) -> tuple[App, list[LogDrain]]:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        rows = s.scalars(
            select(LogDrain).where(LogDrain.app_id == app.id).order_by(LogDrain.created_at)
        )
        return app, list(rows)


def add_drain(ctx: Context, user: User, app_ident: str, url: str) -> tuple[App, LogDrain]:
    try:
        wanted = parse_drain_url(url)
    except ValueError as exc:
        raise InvalidParams(str(exc)) from None
    try:
        with ctx.store.session() as s:
            app = find_app(s, user, app_ident)
            count = s.scalar(select(func.count(LogDrain.id)).where(LogDrain.app_id == app.id))
            if _find(s, app, wanted.url) is not None:
                raise InvalidParams(f"{wanted.shown} is already a drain of {app.name}.")
            if (count or 0) >= MAX_DRAINS:
                raise InvalidParams(f"An app may have at most {MAX_DRAINS} log drains.")
            drain = LogDrain(app_id=app.id, url=wanted.url, token=new_token())
            s.add(drain)
            s.flush()
    except IntegrityError:  # the same URL added at the same moment
        raise InvalidParams(f"{wanted.shown} is already a drain of this app.") from None
    ctx.event(app.id, f"Add drain {_where(wanted.url)} by user {user.email}")
    ctx.wake()
    return app, drain


def get_drain(ctx: Context, user: User, app_ident: str, ident: str) -> tuple[App, LogDrain]:
    """By id, URL or token."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        return app, _existing(s, app, ident)


def remove_drain(ctx: Context, user: User, app_ident: str, ident: str) -> tuple[App, LogDrain]:
    """By id, URL or token; the agent stops sending to it within seconds."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        drain = _existing(s, app, ident)
        s.delete(drain)
    ctx.event(app.id, f"Remove drain {_where(drain.url)} by user {user.email}")
    ctx.wake()
    return app, drain


def _find(s: Session, app: App, ident: str) -> LogDrain | None:
    ident = ident.strip()
    return s.scalar(
        select(LogDrain).where(
            LogDrain.app_id == app.id,
            or_(LogDrain.id == ident, LogDrain.url == ident, LogDrain.token == ident),
        )
    )


def _existing(s: Session, app: App, ident: str) -> LogDrain:
    drain = _find(s, app, ident)
    if drain is None:
        raise NotFound(f"{redact(ident)} is not a drain of {app.name}.")
    return drain


def _where(url: str) -> str:
    """Scheme, host and port: a drain URL's path or user part may hold a secret, and the
    app's log stream goes to every collaborator and drain."""
    parsed = parse_drain_url(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port}"
