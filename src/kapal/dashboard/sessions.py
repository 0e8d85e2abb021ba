"""Dashboard logins: server-side sessions and the CSRF token bound to each of them.

The cookie holds a random secret; the `web_sessions` table holds its SHA-256, the user, the
CSRF token and the expiry. Apps are served from sibling hosts (`*.localhost`), which count as
the same site, so SameSite alone does not stop them posting forms here: every POST carries the
session's CSRF token, and cross-origin POSTs are refused outright.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import cast
from urllib.parse import urlsplit

from fastapi import Request, Response
from sqlalchemy import delete

from kapal.domain.hashes import hash_secret
from kapal.services.context import Context
from kapal.store.models import User, WebSession, now

COOKIE = "kapal_session"
# Over https the browser lets us use the __Host- prefix: it refuses any such cookie that is not
# Secure, host-only and Path=/, so an app on a sibling host cannot plant one.
SECURE_COOKIE = "__Host-kapal_session"
SESSION_TTL = timedelta(days=14)
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Login:
    """The user behind a request's session cookie."""

    user: User
    csrf_token: str
    session_hash: str


def context(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)


def cookie_name(request: Request) -> str:
    return SECURE_COOKIE if request.url.scheme == "https" else COOKIE


def start(ctx: Context, user: User) -> str:
    """A new session for this user; returns the cookie's secret."""
    secret = secrets.token_urlsafe(32)
    with ctx.store.session() as s:
        # Expired sessions are only dead rows; sweeping them at each login keeps the table small.
        s.execute(delete(WebSession).where(WebSession.expires_at <= now()))
        s.add(
            WebSession(
                id_hash=hash_secret(secret),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                expires_at=now() + SESSION_TTL,
            )
        )
    return secret


def load(ctx: Context, secret: str | None) -> Login | None:
    """The live session with this secret, if any."""
    if not secret:
        return None
    with ctx.store.session() as s:
        row = s.get(WebSession, hash_secret(secret))
        if row is None:
            return None
        if row.expires_at <= now():
            s.delete(row)
            return None
        user = s.get(User, row.user_id)
        if user is None:
            return None
        return Login(user, row.csrf_token, row.id_hash)


def end(ctx: Context, secret: str | None) -> None:
    if not secret:
        return
    with ctx.store.session() as s:
        row = s.get(WebSession, hash_secret(secret))
        if row is not None:
            s.delete(row)


def current(request: Request) -> Login | None:
    """The login of this request's cookie."""
    return load(context(request), request.cookies.get(cookie_name(request)))


def set_cookie(request: Request, response: Response, secret: str) -> None:
    # No domain: the cookie is host-only, so apps on *.localhost never receive it.
    response.set_cookie(
        cookie_name(request),
        secret,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        cookie_name(request),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def csrf_ok(login: Login, token: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and a form can hold anything.
    return hmac.compare_digest(login.csrf_token.encode(), token.encode())


def same_origin(request: Request) -> bool:
    """False when the browser says this request comes from another origin's page."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by every client; the CSRF token is the real check
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()
