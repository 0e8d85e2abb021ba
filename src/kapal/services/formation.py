"""Formation: how many dynos of each process type, and their size."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.domain.errors import InvalidParams, NotFound
from kapal.domain.formation import (
    DEFAULT_SIZE,
    ScaleChange,
    display_size,
    normalise_size,
    validate_quantity,
)
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.services.releases import current_release
from kapal.store.models import App, Dyno, Formation, Slug, User, now


@dataclass(frozen=True)
class Update:
    """One process type's change. `op` "+" or "-" makes `quantity` relative to the current
    quantity (Heroku's `"quantity": "+1"`), as `ps:scale web+1`."""

    type: str
    quantity: int | None = None
    size: str | None = None
    op: str = "="


def process_types(s: Session, app: App) -> dict[str, str]:
    release = current_release(s, app)
    if release is None or release.slug_id is None:
        return {}
    slug = s.get(Slug, release.slug_id)
    return dict(slug.process_types) if slug else {}


def sync_formation(s: Session, app: App, types: dict[str, str]) -> None:
    """Match the formation to a new slug's process types: new `web` starts at 1, others at 0;
    types the slug no longer declares go away. `release` is never a formation type."""
    rows = {f.type: f for f in s.scalars(select(Formation).where(Formation.app_id == app.id))}
    for type_ in types:
        if type_ != "release" and type_ not in rows:
            s.add(Formation(app_id=app.id, type=type_, quantity=default_quantity(type_)))
    for type_, row in rows.items():
        if type_ not in types:
            s.delete(row)


def default_quantity(type_: str) -> int:
    return 1 if type_ == "web" else 0


def set_formation(s: Session, app: App, updates: Sequence[Update]) -> None:
    """Write already validated quantities and sizes onto the app's rows (after sync_formation,
    for a deploy's initial formation)."""
    rows = {f.type: f for f in s.scalars(select(Formation).where(Formation.app_id == app.id))}
    for update in updates:
        row = rows[update.type]
        if update.quantity is not None:
            row.quantity = update.quantity
        if update.size is not None:
            row.size = update.size


def reset_formation(ctx: Context, app_id: str, types: Collection[str]) -> None:
    """Put these process types back to where a new slug starts them (web=1, others 0)."""
    with ctx.store.session() as s:
        query = select(Formation).where(Formation.app_id == app_id, Formation.type.in_(types))
        for row in s.scalars(query):
            row.quantity, row.size = default_quantity(row.type), DEFAULT_SIZE


def list_formation(
    ctx: Context, user: User, app_ident: str
) -> tuple[list[Formation], dict[str, str]]:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        rows = list(
            s.scalars(select(Formation).where(Formation.app_id == app.id).order_by(Formation.type))
        )
        return rows, process_types(s, app)


def scale(ctx: Context, user: User, app_ident: str, updates: list[Update]) -> list[Formation]:
    """Write the desired quantities and sizes; the agent does the rest."""
    if not updates:
        raise InvalidParams("No formation updates given.")
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        # Locked: a relative update (web+1) reads the quantity it changes.
        query = select(Formation).where(Formation.app_id == app.id).with_for_update()
        rows = {f.type: f for f in s.scalars(query)}
        # 404, as Heroku answers (its CLI then prints the message as it does before a push).
        if not rows:
            raise NotFound(
                f"No process types on {app.name}. Upload a Procfile to add process types."
            )
        changed = []
        for update in updates:
            row = rows.get(update.type)
            if row is None:
                raise NotFound(
                    f"Couldn't find that process type ({update.type}). "
                    f"Process types: {', '.join(sorted(rows))}."
                )
            if update.quantity is not None:
                change = ScaleChange(update.type, update.op, update.quantity, None)
                row.quantity = validate_quantity(change.apply(row.quantity))
            if update.size is not None:
                row.size = normalise_size(update.size)
            changed.append(row)
        summary = ", ".join(f"{r.type}@{r.quantity}:{display_size(r.size)}" for r in changed)
    ctx.event(app.id, f"Scaled to {summary} by user {user.email}")
    ctx.wake()
    return changed


def restart(ctx: Context, user: User, app_ident: str, target: str | None = None) -> None:
    """Replace all dynos, a process type (`web`) or one dyno (`web.1` or its id)."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        dyno = None
        if target:
            dyno = s.scalar(
                select(Dyno).where(
                    Dyno.app_id == app.id, (Dyno.name == target) | (Dyno.id == target)
                )
            )
        if dyno is not None:
            dyno.restart_at = now()  # the agent replaces dynos whose restart_at has passed
        else:
            query = select(Formation).where(Formation.app_id == app.id)
            if target:
                query = query.where(Formation.type == target)
            rows = list(s.scalars(query))
            if target and not rows:
                raise NotFound(f"Couldn't find a dyno or process type named {target}.")
            for row in rows:
                row.restarted_at = now()
    ctx.event(app.id, f"Restart {target or 'all dynos'} by user {user.email}")
    ctx.wake()
