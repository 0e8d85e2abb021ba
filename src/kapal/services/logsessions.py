"""Log sessions: an unguessable, expiring URL on the agent's log hub."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete

from kapal.domain.errors import InvalidParams
from kapal.domain.hashes import hash_secret
from kapal.domain.logline import SOURCES
from kapal.logs.filters import MAX_GREP
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.models import LogSession, User, now

DYNO_FILTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
SESSION_TTL = timedelta(minutes=5)
MAX_LINES = 10_000  # the last 1500 come from memory, older ones from the archive on disk


def create_log_session(
    ctx: Context,
    user: User,
    app_ident: str,
    *,
    lines: int = 100,
    tail: bool = False,
    dyno: str | None = None,
    source: str | None = None,
    grep: str | None = None,
    since: datetime | None = None,
) -> str:
    """Returns the URL that streams the session."""
    if not 0 <= lines <= MAX_LINES:
        raise InvalidParams(f"lines must be between 0 and {MAX_LINES}.")
    if dyno is not None and not DYNO_FILTER.match(dyno):
        raise InvalidParams("dyno must be a dyno name such as web.1 or a process type such as web.")
    if source == "heroku":  # what Heroku users type for platform lines
        source = "kapal"
    if source is not None and source not in SOURCES:
        raise InvalidParams(f"source must be one of: {', '.join(SOURCES)}.")
    if grep is not None and (len(grep) > MAX_GREP or any(ch < " " for ch in grep)):
        raise InvalidParams(
            f"grep must be at most {MAX_GREP} characters long, without control characters."
        )
    if since is not None and since.tzinfo is None:
        raise InvalidParams("since must be a time with its offset, e.g. 2026-11-27T10:00:00Z.")
    secret = secrets.token_urlsafe(32)
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        s.execute(delete(LogSession).where(LogSession.expires_at < now()))
        s.add(
            LogSession(
                id_hash=hash_secret(secret),
                app_id=app.id,
                dyno=dyno or None,
                source=source,
                lines=lines,
                tail=tail,
                grep=grep or None,
                since=since,
                expires_at=now() + SESSION_TTL,
            )
        )
    # The Heroku CLI reads `tail=true` in the URL to know the stream does not end.
    suffix = "?tail=true" if tail else ""
    return f"{ctx.settings.logs_url}/sessions/{secret}{suffix}"
