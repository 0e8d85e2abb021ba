"""Dynos as the agent observes them, and one-off dynos requested through the API."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from kapal.domain.errors import InvalidParams
from kapal.domain.formation import DEFAULT_SIZE, normalise_size
from kapal.services.access import find_app
from kapal.services.auth import hash_secret
from kapal.services.context import Context
from kapal.services.formation import process_types
from kapal.services.releases import current_release
from kapal.store.models import Dyno, User

MAX_COMMAND = 32 * 1024


def list_dynos(ctx: Context, user: User, app_ident: str) -> list[Dyno]:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        return list(s.scalars(select(Dyno).where(Dyno.app_id == app.id).order_by(Dyno.name)))


def run_one_off(
    ctx: Context,
    user: User,
    app_ident: str,
    command: str,
    *,
    attach: bool,
    size: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Dyno, str | None]:
    """Ask the agent for a one-off dyno in the current release. With attach, returns the
    rendezvous secret the client presents to the agent to start it and stream its I/O."""
    if not command.strip():
        raise InvalidParams("A command is required.")
    if len(command) > MAX_COMMAND:
        raise InvalidParams(f"Commands are limited to {MAX_COMMAND} characters.")
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        release = current_release(s, app)
        if release is None or release.slug_id is None:
            raise InvalidParams(f"{app.name} has no release yet: git push first.")
        # `kapal run worker 42` runs the Procfile's worker command with 42 appended.
        first, _, rest = command.strip().partition(" ")
        types = process_types(s, app)
        if first in types:
            command = f"{types[first]} {rest}".strip()
        secret = secrets.token_urlsafe(32) if attach else None
        taken = set(s.scalars(select(Dyno.name).where(Dyno.app_id == app.id)))
        name = next(
            n
            for n in (f"run.{secrets.randbelow(9000) + 1000}" for _ in range(100))
            if n not in taken
        )
        dyno = Dyno(
            app_id=app.id,
            name=name,
            type="run",
            command=command,
            size=normalise_size(size) if size else DEFAULT_SIZE,
            release_version=release.version,
            state="starting",
            attach=attach,
            attach_hash=hash_secret(secret) if secret else None,
        )
        s.add(dyno)
    ctx.event(app.id, f"Starting process with command `{command}` by user {user.email}")
    ctx.wake()
    _ = env  # extra environment for one-off dynos arrives with the runtime issue
    return dyno, secret
