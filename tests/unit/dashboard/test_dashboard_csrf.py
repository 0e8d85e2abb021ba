"""Every form needs the CSRF token of its own session, and must come from this origin."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select
from tests.unit.dashboard.dashboard_helpers import PASSWORD, create_app, sign_up

from kapal.services.context import Context
from kapal.store.models import App

Browser = Callable[[], httpx.Client]


def count_apps(ctx: Context) -> int:
    with ctx.store.session() as s:
        return s.scalar(select(func.count()).select_from(App)) or 0


def test_every_form_on_the_pages_carries_the_session_token(browser: Browser) -> None:
    client = browser()
    token = sign_up(client)
    name = create_app(client, token, "csrf-demo")
    for path in ("/dashboard", "/dashboard/new", f"/dashboard/apps/{name}", "/logout"):
        html = client.get(path).text
        forms = html.count('<form method="post"')
        assert forms > 0, path
        assert html.count(f'name="csrf_token" value="{token}"') == forms, path


@pytest.mark.parametrize("token", [None, "", "forged", "é"])
def test_a_form_without_the_right_token_is_refused(
    browser: Browser, ctx: Context, token: str | None
) -> None:
    client = browser()
    sign_up(client)
    data = {"name": "no-token"} if token is None else {"name": "no-token", "csrf_token": token}
    r = client.post("/dashboard/new", data=data)
    assert r.status_code == 403
    assert "Request refused" in r.text
    assert count_apps(ctx) == 0


def test_the_token_of_another_session_is_refused(browser: Browser, ctx: Context) -> None:
    mallory = browser()
    mallory_token = sign_up(mallory, "mallory@example.com")
    victim = browser()
    sign_up(victim)
    r = victim.post("/dashboard/new", data={"csrf_token": mallory_token, "name": "planted"})
    assert r.status_code == 403
    assert count_apps(ctx) == 0


def test_each_form_action_checks_the_token(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    name = create_app(client, token, "guarded")
    posts = {
        f"/dashboard/apps/{name}/config": {"key": "A", "value": "1"},
        f"/dashboard/apps/{name}/config/unset": {"key": "A"},
        f"/dashboard/apps/{name}/formation": {"type": "web", "quantity": "1"},
        f"/dashboard/apps/{name}/restart": {},
        f"/dashboard/apps/{name}/destroy": {"confirm": name},
        "/logout": {},
    }
    for path, data in posts.items():
        r = client.post(path, data={**data, "csrf_token": "wrong"})
        assert r.status_code == 403, path
    assert count_apps(ctx) == 1
    assert client.get("/dashboard").status_code == 200  # still logged in


def test_a_post_from_another_origin_is_refused_even_with_the_token(
    browser: Browser, ctx: Context
) -> None:
    client = browser()
    token = sign_up(client)
    # An app on a sibling host is the same *site* as the dashboard, so SameSite cookies still
    # travel with its forms: the Origin check and the token are what stop it.
    evil = {"Origin": "http://evil-app.localhost:8080"}
    r = client.post("/dashboard/new", data={"csrf_token": token, "name": "x-site"}, headers=evil)
    assert r.status_code == 403
    r = client.post("/dashboard/new", data={"csrf_token": token}, headers={"Origin": "null"})
    assert r.status_code == 403
    assert count_apps(ctx) == 0
    own = {"Origin": str(client.base_url).rstrip("/")}
    r = client.post("/dashboard/new", data={"csrf_token": token, "name": "same-site"}, headers=own)
    assert r.status_code == 303


def test_login_and_signup_from_another_origin_are_refused(browser: Browser) -> None:
    # Otherwise a page could log the victim into the attacker's account.
    sign_up(browser(), "mallory@example.com")
    evil = {"Origin": "http://evil-app.localhost:8080"}
    client = browser()
    r = client.post(
        "/login", data={"email": "mallory@example.com", "password": PASSWORD}, headers=evil
    )
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    r = client.post(
        "/dashboard/signup", data={"email": "eve@example.com", "password": PASSWORD}, headers=evil
    )
    assert r.status_code == 403
    assert "set-cookie" not in r.headers


def test_without_a_session_a_post_goes_to_the_login_page(browser: Browser, ctx: Context) -> None:
    client = browser()
    r = client.post("/dashboard/new", data={"csrf_token": "anything", "name": "anon"})
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    assert count_apps(ctx) == 0
