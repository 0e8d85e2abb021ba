"""Sign up, log in, log out, and the session cookie."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy import func, select, update
from tests.unit.dashboard.dashboard_helpers import PASSWORD, csrf_of, sign_up

from kapal.dashboard.sessions import SESSION_TTL
from kapal.domain.hashes import hash_secret
from kapal.services.context import Context
from kapal.store.models import Token, WebSession, now

Browser = Callable[[], httpx.Client]


def test_landing_sends_strangers_to_login_and_users_to_their_apps(browser: Browser) -> None:
    client = browser()
    assert client.get("/").headers["location"] == "/login"
    sign_up(client)
    assert client.get("/").headers["location"] == "/dashboard"
    assert client.get("/login").headers["location"] == "/dashboard"
    assert client.get("/signup").headers["location"] == "/dashboard"


def test_signup_lands_on_the_apps_list(browser: Browser) -> None:
    client = browser()
    form = client.get("/signup")
    assert form.status_code == 200
    assert 'action="/dashboard/signup"' in form.text
    r = client.post("/dashboard/signup", data={"email": "Ada@Example.com", "password": PASSWORD})
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard"
    apps = client.get("/dashboard")
    assert apps.status_code == 200
    assert "ada@example.com" in apps.text
    assert "Create new app" in apps.text


def test_session_cookie_is_host_only_httponly_lax_and_expires_in_14_days(
    browser: Browser, ctx: Context
) -> None:
    client = browser()
    r = client.post("/dashboard/signup", data={"email": "ada@example.com", "password": PASSWORD})
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("kapal_session=")
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert f"max-age={int(SESSION_TTL.total_seconds())}" in attributes
    assert timedelta(days=14) == SESSION_TTL
    assert not any(a.startswith("domain") for a in attributes)
    assert "secure" not in attributes  # plain http here
    # The table holds only the secret's hash.
    secret = cookie.split(";")[0].split("=", 1)[1]
    with ctx.store.session() as s:
        rows = list(s.scalars(select(WebSession)))
    assert [row.id_hash for row in rows] == [hash_secret(secret)]
    assert secret not in rows[0].id_hash
    assert timedelta(days=13) < rows[0].expires_at - now() <= SESSION_TTL


def test_over_https_the_cookie_is_secure_and_host_prefixed(browser: Browser) -> None:
    # uvicorn believes X-Forwarded-Proto from 127.0.0.1, as behind a TLS-terminating proxy.
    client = browser()
    https = {"X-Forwarded-Proto": "https"}
    r = client.post(
        "/dashboard/signup",
        data={"email": "ada@example.com", "password": PASSWORD},
        headers=https,
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-kapal_session=")
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "secure" in attributes
    assert "path=/" in attributes
    assert not any(a.startswith("domain") for a in attributes)
    secret = cookie.split(";")[0].split("=", 1)[1]
    fresh = browser()
    page = fresh.get("/dashboard", headers={**https, "Cookie": f"__Host-kapal_session={secret}"})
    assert page.status_code == 200
    # The https cookie name is not honoured over plain http, nor the other way round.
    plain = fresh.get("/dashboard", headers={"Cookie": f"__Host-kapal_session={secret}"})
    assert plain.status_code == 303


def test_signup_leaves_no_api_token_behind(browser: Browser, ctx: Context) -> None:
    sign_up(browser())
    with ctx.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Token)) == 0


def test_signup_errors_are_shown_on_the_form(browser: Browser) -> None:
    client = browser()
    r = client.post("/dashboard/signup", data={"email": "not-an-email", "password": "long enough"})
    assert r.status_code == 422
    assert "is not a valid email address" in r.text
    assert "set-cookie" not in r.headers
    r = client.post("/dashboard/signup", data={"email": "ada@example.com", "password": "short"})
    assert r.status_code == 422
    assert "at least 8 characters" in r.text
    assert 'value="ada@example.com"' in r.text  # what was typed stays in the form
    sign_up(browser())
    r = client.post(
        "/dashboard/signup", data={"email": "ada@example.com", "password": "another one"}
    )
    assert r.status_code == 409
    assert "already exists" in r.text


def test_login_errors_do_not_reveal_whether_the_email_exists(browser: Browser) -> None:
    sign_up(browser())
    client = browser()
    wrong_password = client.post(
        "/login", data={"email": "ada@example.com", "password": "wrong password"}
    )
    no_account = client.post("/login", data={"email": "bob@example.com", "password": "whatever1"})
    assert wrong_password.status_code == no_account.status_code == 400
    assert "Invalid email or password." in wrong_password.text
    assert wrong_password.text.replace("ada@", "bob@") == no_account.text
    assert "set-cookie" not in wrong_password.headers
    assert client.get("/dashboard").headers["location"] == "/login"


def test_login_returns_to_the_page_asked_for_but_never_off_site(browser: Browser) -> None:
    sign_up(browser())
    client = browser()
    r = client.get("/dashboard/new")
    assert r.headers["location"] == "/login?next=/dashboard/new"
    assert 'name="next" value="/dashboard/new"' in client.get(r.headers["location"]).text
    r = client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "next": "/dashboard/new"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/new"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/apps"):
        other = browser()
        r = other.post(
            "/login", data={"email": "ada@example.com", "password": PASSWORD, "next": evil}
        )
        assert r.headers["location"] == "/dashboard", evil


def test_logout_ends_the_server_side_session(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    stolen = client.cookies["kapal_session"]
    assert "Log out" in client.get("/logout").text
    r = client.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    assert 'kapal_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    assert client.get("/dashboard").headers["location"] == "/login"
    # The old cookie is worthless even if someone kept a copy.
    replay = browser()
    replay.cookies.set("kapal_session", stolen)
    assert replay.get("/dashboard").headers["location"] == "/login"
    with ctx.store.session() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0


def test_expired_sessions_are_refused(browser: Browser, ctx: Context) -> None:
    client = browser()
    sign_up(client)
    with ctx.store.session() as s:
        s.execute(update(WebSession).values(expires_at=now() - timedelta(seconds=1)))
    assert client.get("/dashboard").headers["location"] == "/login"


def test_logging_in_again_replaces_the_session(browser: Browser) -> None:
    client = browser()
    first = sign_up(client)
    old_cookie = client.cookies["kapal_session"]
    r = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 303
    assert client.cookies["kapal_session"] != old_cookie
    assert csrf_of(client.get("/dashboard").text) != first
