"""Pages as HTML responses: one autoescaping Jinja environment, security headers, redirects."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from kapal.dashboard.format import ago, timestamp
from kapal.dashboard.sessions import CSRF_FIELD, Login
from kapal.domain.errors import KapalError
from kapal.store.models import now

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"

# Pages load nothing but our own stylesheet; no script runs, no other site may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_TITLES = {400: "Bad request", 403: "Access denied", 404: "Not found", 409: "Conflict"}


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a typo in a template fails the tests instead of hiding
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ago"] = lambda when: ago(when, now())
    env.filters["timestamp"] = timestamp
    env.filters["app_url"] = app_url
    env.globals["csrf_field"] = CSRF_FIELD
    return env


def page(template: str, *, login: Login | None, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("error", None)
    values.setdefault("notice", None)
    html = environment().get_template(template).render(login=login, **values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a POST the browser GETs the page, so a reload never re-posts."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def error_page(login: Login | None, exc: KapalError) -> HTMLResponse:
    title = _TITLES.get(exc.status, "Something went wrong")
    return page("error.html", login=login, status=exc.status, title=title, message=exc.message)


def forbidden(login: Login | None) -> HTMLResponse:
    return page(
        "error.html",
        login=login,
        status=403,
        title="Request refused",
        message="This form was not sent from this dashboard, or your session changed. "
        "Go back, reload the page and try again.",
    )


def app_url(name: str, anchor: str = "") -> str:
    return f"/dashboard/apps/{quote(name, safe='')}" + (f"#{anchor}" if anchor else "")
