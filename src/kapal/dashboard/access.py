"""Who may see a page or send a form: the login for GETs, plus origin and CSRF for POSTs."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Request, Response

from kapal.dashboard import sessions
from kapal.dashboard.render import forbidden, redirect
from kapal.dashboard.sessions import Login

# Form fields default to "" so a missing field reaches our own checks (and an HTML answer)
# instead of FastAPI's JSON validation error.
FormStr = Annotated[str, Form()]

# Only our own pages are places to return to after logging in: never another host.
_NEXT = re.compile(r"^/dashboard(/[A-Za-z0-9._~-]+)*/?$")


def safe_next(target: str) -> str:
    return target if _NEXT.match(target) else "/dashboard"


def to_login(request: Request) -> Response:
    target = request.url.path
    if _NEXT.match(target) and target != "/dashboard":
        return redirect(f"/login?next={quote(target, safe='/')}")
    return redirect("/login")


def login_for_page(request: Request) -> Login | Response:
    """The login, or a redirect to the login page."""
    login = sessions.current(request)
    return login if login is not None else to_login(request)


def login_for_post(request: Request, csrf_token: str) -> Login | Response:
    """The login, if this form came from our page in this session; otherwise a refusal."""
    if not sessions.same_origin(request):
        return forbidden(sessions.current(request))
    login = sessions.current(request)
    if login is None:
        return redirect("/login")
    if not sessions.csrf_ok(login, csrf_token):
        return forbidden(login)
    return login
