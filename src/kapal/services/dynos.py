"""Dynos as the agent observes them, one-off dynos requested through the API, and stopping
dynos (`ps:stop`)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.domain.errors import InvalidParams, NotFound
from kapal.domain.formation import DEFAULT_SIZE, normalise_size
from kapal.domain.hashes import hash_secret
from kapal.domain.names import CONFIG_KEY
from kapal.domain.rendezvous import Launch, attach_secret, terminal_size
from kapal.services.access import find_app
from kapal.services.config import MAX_CONFIG_BYTES
from kapal.services.context import Context
from kapal.services.formation import process_types
from kapal.services.releases import current_release
from kapal.store.models import Dyno, Formation, User, now

MAX_COMMAND = 32 * 1024
_TERMINAL_VARS = frozenset({"TERM", "COLUMNS", "LINES"})


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
    env: Mapping[str, str] | None = None,
    tty: bool = False,
) -> tuple[Dyno, str | None]:
    """Ask the agent for a one-off dyno in the current release. With attach, returns the
    rendezvous secret the client presents to the agent to start it and stream its I/O; it
    carries the dyno's terminal (`tty`) and `env` (kapal.domain.rendezvous)."""
    if not command.strip():
        raise InvalidParams("A command is required.")
    if len(command) > MAX_COMMAND:
        raise InvalidParams(f"Commands are limited to {MAX_COMMAND} characters.")
    launch = _launch(env or {}, attach=attach, tty=tty)
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
        secret = attach_secret(secrets.token_urlsafe(32), launch) if attach else None
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
    return dyno, secret


def _launch(env: Mapping[str, str], *, attach: bool, tty: bool) -> Launch:
    for key, value in env.items():
        if not CONFIG_KEY.fullmatch(key):
            raise InvalidParams(
                f"Environment variable name {key!r} is invalid: use letters, digits and "
                "underscores, not starting with a digit."
            )
        if "\0" in value:
            raise InvalidParams(f"The value of environment variable {key} has a NUL byte.")
    if sum(len(k) + len(v) for k, v in env.items()) > MAX_CONFIG_BYTES:
        raise InvalidParams(f"Environment variables are limited to {MAX_CONFIG_BYTES} bytes.")
    if attach:
        return Launch(terminal_size(env) if tty else None, dict(env))
    if tty:
        raise InvalidParams("A detached one-off dyno has no terminal: tty needs attach.")
    # Heroku's CLI sends these for its terminal even with run:detached; without a terminal
    # they describe nothing. Others need a place in the store the agent reads, not there yet.
    others = sorted(set(env) - _TERMINAL_VARS)
    if others:
        raise InvalidParams(
            "Detached one-off dynos cannot get environment variables yet "
            f"({', '.join(others)}): set them as config vars, or in the command."
        )
    return Launch()


def stop_dyno(ctx: Context, user: User, app_ident: str, name: str) -> Dyno:
    """Stop one dyno (`web.1`, `run.1234` or its id): a formation dyno is started again by the
    agent, as on Heroku; a one-off dyno ends."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        dyno = s.scalar(
            select(Dyno).where(Dyno.app_id == app.id, (Dyno.name == name) | (Dyno.id == name))
        )
        if dyno is None:
            raise NotFound(f"Couldn't find that dyno ({name}).")
        _stop(s, dyno)
    ctx.event(app.id, f"Stop {dyno.name} by user {user.email}")
    ctx.wake()
    return dyno


def stop_type(ctx: Context, user: User, app_ident: str, type_: str) -> None:
    """Stop every dyno of a process type: formation dynos are started again, `run` (the
    one-off dynos) end."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        if type_ == "run":
            for dyno in s.scalars(select(Dyno).where(Dyno.app_id == app.id, Dyno.type == "run")):
                _stop(s, dyno)
        else:
            formation = s.scalar(
                select(Formation).where(Formation.app_id == app.id, Formation.type == type_)
            )
            if formation is None:
                raise NotFound(f"Couldn't find that process type ({type_}).")
            formation.restarted_at = now()  # the agent replaces dynos started before it
    ctx.event(app.id, f"Stop {type_} dynos by user {user.email}")
    ctx.wake()


def _stop(s: Session, dyno: Dyno) -> None:
    if dyno.type == "run" and dyno.state == "starting":
        # Not running yet (or only just starting): without its row nobody can attach to it,
        # and the agent never starts it, or stops it at once.
        s.delete(dyno)
    else:
        # The agent stops a dyno started before this (SIGTERM, grace, SIGKILL); a formation
        # dyno gets a successor, a one-off dyno never restarts.
        dyno.restart_at = now()
