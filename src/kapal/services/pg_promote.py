"""pg:promote: which Postgres add-on is the app's DATABASE (its DATABASE_URL)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select

from kapal.addons.naming import PRIMARY, config_var, default_attachment_name
from kapal.domain.errors import Conflict
from kapal.services.context import Context
from kapal.services.pg import PgDatabase, find_database
from kapal.services.releases import derive_release, release_base, release_event
from kapal.store.models import Addon, Attachment, Release, User


@dataclass(frozen=True)
class Promotion:
    database: PgDatabase
    release: Release
    previous: str | None  # the add-on that was DATABASE
    kept_as: str | None  # the config var its URL stays reachable under


def promote(ctx: Context, user: User, app_ident: str, ident: str) -> Promotion:
    """Attach the add-on as DATABASE. The one that was DATABASE keeps an attachment of its
    own (KAPAL_POSTGRESQL_<COLOR>, made if it had none), so its URL stays in the config.
    One release for both changes."""
    with ctx.store.session() as s:
        database = find_database(s, user, app_ident, ident)
        app = database.app
        base = release_base(s, app)  # the app's lock, before reading its attachments
        attachments = list(s.scalars(select(Attachment).where(Attachment.app_id == app.id)))
        current = next((a for a in attachments if a.name == PRIMARY), None)
        if current is not None and current.addon_id == database.addon.id:
            raise Conflict(f"{database.addon.name} is already the DATABASE of {app.name}.")
        env = dict(base.config) if base else {}
        changes = [f"Attach {PRIMARY} (@ref:{database.addon.name})"]
        previous = kept_as = None
        if current is not None:
            old = s.get(Addon, current.addon_id)
            assert old is not None
            previous = old.name
            others = [a.name for a in attachments if a.addon_id == old.id and a is not current]
            if others:
                kept_as = config_var(others[0])
            else:
                name = default_attachment_name(old.service, {a.name for a in attachments})
                s.add(Attachment(addon_id=old.id, app_id=app.id, name=name))
                kept_as = config_var(name)
                env[kept_as] = old.config["URL"]
                changes.append(f"Attach {name} (@ref:{old.name})")
            s.delete(current)
            s.flush()  # the name DATABASE is free before it is taken again
        s.add(Attachment(addon_id=database.addon.id, app_id=app.id, name=PRIMARY))
        env[config_var(PRIMARY)] = database.addon.config["URL"]
        release = derive_release(
            s, app, user, "; ".join(changes), base=base, config=env, run_release_phase=False
        )
    release_event(ctx, app, release, user)
    promoted = replace(database, config_vars=(config_var(PRIMARY), *database.config_vars))
    return Promotion(promoted, release, previous, kept_as)
