"""Releases: immutable (slug, config) versions; the current one is the newest succeeded."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kapal.domain.errors import InvalidParams, NotFound
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.models import App, Release, Slug, User


def current_release(s: Session, app: App) -> Release | None:
    return s.scalar(
        select(Release)
        .where(Release.app_id == app.id, Release.status == "succeeded")
        .order_by(Release.version.desc())
        .limit(1)
    )


def latest_release(s: Session, app: App) -> Release | None:
    """The newest release that is live or about to be (its release phase still running)."""
    return s.scalar(
        select(Release)
        .where(Release.app_id == app.id, Release.status != "failed")
        .order_by(Release.version.desc())
        .limit(1)
    )


def release_base(s: Session, app: App) -> Release | None:
    """What the next release builds on (latest_release), with the app's row locked so that
    concurrent writers of one app's releases take turns instead of losing a change."""
    s.execute(select(App.id).where(App.id == app.id).with_for_update())
    return latest_release(s, app)


def derive_release(
    s: Session,
    app: App,
    user: User | None,
    description: str,
    *,
    base: Release | None,
    slug_id: str | None = None,
    config: dict[str, str] | None = None,
    run_release_phase: bool = True,
) -> Release:
    """The next release: `base` (from release_base) with a new slug and/or config.
    A release built on one whose release phase is still pending waits for its own."""
    return add_release(
        s,
        app,
        user,
        description,
        slug_id=slug_id if slug_id is not None else (base.slug_id if base else None),
        config=config if config is not None else (dict(base.config) if base else {}),
        run_release_phase=run_release_phase or (base is not None and base.status == "pending"),
    )


def add_release(
    s: Session,
    app: App,
    user: User | None,
    description: str,
    *,
    slug_id: str | None,
    config: dict[str, str],
    run_release_phase: bool = True,
) -> Release:
    """Insert the next version. With a `release` process it stays pending until the agent has
    run the release phase; otherwise it is live at once."""
    version = (s.scalar(select(func.max(Release.version)).where(Release.app_id == app.id)) or 0) + 1
    command = None
    if slug_id is not None and run_release_phase:
        slug = s.get(Slug, slug_id)
        command = slug.process_types.get("release") if slug is not None else None
    release = Release(
        app_id=app.id,
        version=version,
        description=description,
        slug_id=slug_id,
        config=dict(config),
        status="pending" if command else "succeeded",
        release_command=command,
        user_id=user.id if user else None,
    )
    s.add(release)
    s.flush()
    return release


def release_event(ctx: Context, app: App, release: Release, user: User) -> None:
    ctx.event(app.id, f"{release.description} by user {user.email}")
    ctx.event(app.id, f"Release v{release.version} created by user {user.email}")
    ctx.wake()


def list_releases(s: Session, app: App) -> list[Release]:
    return list(
        s.scalars(select(Release).where(Release.app_id == app.id).order_by(Release.version))
    )


def find_release(s: Session, app: App, ident: str) -> Release:
    """By id or by version (`7` or `v7`)."""
    text = ident.removeprefix("v")
    query = select(Release).where(Release.app_id == app.id)
    if text.isdigit():
        query = query.where(Release.version == int(text))
    else:
        query = query.where(Release.id == ident)
    release = s.scalar(query)
    if release is None:
        raise NotFound(f"Couldn't find release {ident}.")
    return release


def roll_back(ctx: Context, user: User, app_ident: str, ident: str | None) -> Release:
    """`releases:rollback [vN]` as one use-case: the new release, its events, the wake-up."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        release = rollback(s, app, user, ident)
    release_event(ctx, app, release, user)
    return release


def rollback(s: Session, app: App, user: User, ident: str | None) -> Release:
    """A new release with the slug and config of an earlier one (default: the one before)."""
    release_base(s, app)  # takes the app's lock
    current = current_release(s, app)
    if ident is None:
        if current is None:
            raise InvalidParams("Nothing to roll back to.")
        previous = s.scalar(
            select(Release)
            .where(
                Release.app_id == app.id,
                Release.status == "succeeded",
                Release.version < current.version,
            )
            .order_by(Release.version.desc())
            .limit(1)
        )
        if previous is None:
            raise InvalidParams("There is no earlier release to roll back to.")
        target = previous
    else:
        target = find_release(s, app, ident)
    if target.status != "succeeded":
        raise InvalidParams(f"Release v{target.version} never went live; cannot roll back to it.")
    return add_release(
        s, app, user, f"Rollback to v{target.version}", slug_id=target.slug_id, config=target.config
    )
