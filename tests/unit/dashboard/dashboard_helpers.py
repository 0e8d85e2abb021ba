"""Steps a dashboard user takes, shared by the dashboard tests."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse"


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page:\n" + html
    return match.group(1)


def sign_up(client: httpx.Client, email: str = "ada@example.com") -> str:
    """Sign up through the form; returns the CSRF token of the new session."""
    r = client.post("/dashboard/signup", data={"email": email, "password": PASSWORD})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/dashboard"
    page = client.get("/dashboard")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def create_app(client: httpx.Client, csrf: str, name: str = "") -> str:
    """Create an app through the form; returns its name."""
    r = client.post("/dashboard/new", data={"csrf_token": csrf, "name": name})
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith("/dashboard/apps/"), location
    return location.removeprefix("/dashboard/apps/").partition("?")[0]
