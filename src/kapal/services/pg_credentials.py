"""pg:credentials:rotate: a new password for a Postgres add-on's role, carried to the config
var of every attachment, in a way no crash can lose.

Why this order. The password lives in two places no transaction spans: the server (the
role's password) and the store (the add-on's URL, copied into each attachment's config var).
With one role there is one password, so no order of two separate writes keeps the app's URL
working in between: whichever goes first, the URL fails until the other follows. That gap
is unavoidable (on Heroku too: dynos run with the old URL until their restart). What the
order guarantees is that every state a crash can leave is finished from what is stored,
never from what was only in memory:

1. The new URL is committed to the store first, as the add-on's ROTATING_URL next to its URL,
   before the server knows it. A crash here changes nothing the app uses: the server and the
   config vars still agree on the old password.
2. The server takes the new password, and the role's sessions (logged in with the old one)
   are ended. From here to step 3 the config vars hold a URL the server refuses.
3. One transaction: URL := ROTATING_URL, ROTATING_URL removed, and a release of every app the
   add-on is attached to, with the new URL in each attachment's config var (its dynos restart).

Step 2 may be repeated (the same password again) and step 3 only finishes the ROTATING_URL it
was given. So a rotation stopped anywhere is rolled forward, never back (the server may have
the new password already): by running the command again, which reuses the pending URL rather
than making another, and by `finish_rotations` when the API process starts again, which is
what follows a crash of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from kapal.addons.catalog import POSTGRESQL, find_service
from kapal.addons.errors import ProvisionError
from kapal.addons.naming import config_var
from kapal.addons.postgres import PostgresProvisioner
from kapal.domain.errors import KapalError
from kapal.services.context import Context
from kapal.services.pg import PgDatabase, find_database, provisioner
from kapal.services.releases import derive_release, release_base, release_event
from kapal.store.models import Addon, App, Attachment, Release, User

log = logging.getLogger(__name__)

ROTATING = "ROTATING_URL"


@dataclass(frozen=True)
class Rotation:
    database: PgDatabase
    releases: tuple[tuple[App, Release], ...]  # one per app the add-on is attached to


def rotate_credentials(ctx: Context, user: User, app_ident: str, ident: str) -> Rotation:
    """A new password for the database's role; every attachment's config var follows."""
    postgres = provisioner(ctx)
    with ctx.store.session() as s:
        database = find_database(s, user, app_ident, ident)
        addon = database.addon
        pending = addon.config.get(ROTATING)
        if not pending:  # else finish the rotation an interruption left, with its URL
            pending = postgres.new_credentials(addon.name)["URL"]
            addon.config = {**addon.config, ROTATING: pending}
    releases = _finish(ctx, postgres, addon, pending, user)
    return Rotation(database, releases)


def finish_rotations(ctx: Context) -> int:
    """Roll forward the rotations a crash interrupted (at API start). Returns how many."""
    with ctx.store.session() as s:
        rows = [
            a
            for a in s.scalars(select(Addon).where(Addon.state == "provisioned"))
            if find_service(a.service) is POSTGRESQL and a.config.get(ROTATING)
        ]
    if not rows:
        return 0
    try:
        postgres = provisioner(ctx)
    except KapalError as exc:  # the API must start anyway; the next start tries again
        log.warning("credential rotations stay pending: %s", exc.message)
        return 0
    for addon in rows:
        log.warning("finishing the credential rotation of %s left by an interruption", addon.name)
        try:
            _finish(ctx, postgres, addon, addon.config[ROTATING], None)
        except KapalError as exc:
            log.warning("credential rotation of %s stays pending: %s", addon.name, exc.message)
    return len(rows)


def _finish(
    ctx: Context, postgres: PostgresProvisioner, addon: Addon, pending: str, user: User | None
) -> tuple[tuple[App, Release], ...]:
    """Steps 2 and 3; `user` None: by the owner of the add-on's app."""
    try:
        postgres.apply_credentials(addon.name, {"URL": pending})
    except ProvisionError as exc:
        raise ProvisionError(
            f"Could not rotate the credentials of {addon.name}. {exc.message} "
            "Run the command again to finish."
        ) from exc
    with ctx.store.session() as s:
        row = s.get(Addon, addon.id)
        if row is None or row.config.get(ROTATING) != pending:
            return ()  # destroyed, or finished by someone else meanwhile
        row.config = {**{k: v for k, v in row.config.items() if k != ROTATING}, "URL": pending}
        attachments = list(
            s.scalars(
                select(Attachment)
                .where(Attachment.addon_id == row.id)
                .order_by(Attachment.created_at)
            )
        )
        by = user
        if by is None:
            owner = s.get(App, row.app_id)
            by = s.get(User, owner.owner_id) if owner is not None else None
        releases = []
        for app_id in dict.fromkeys(a.app_id for a in attachments):
            app = s.get(App, app_id)
            assert app is not None
            names = [config_var(a.name) for a in attachments if a.app_id == app_id]
            base = release_base(s, app)
            env = dict(base.config) if base else {}
            env.update(dict.fromkeys(names, pending))
            description = f"Rotate credentials of {row.name} ({', '.join(names)})"
            release = derive_release(
                s, app, by, description, base=base, config=env, run_release_phase=False
            )
            releases.append((app, release))
    for app, release in releases:
        if by is not None:
            release_event(ctx, app, release, by)
        else:
            ctx.wake()
    log.info("rotated the credentials of %s", addon.name)
    return tuple(releases)
