"""The apps list, creating apps, and the app page with its forms."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from sqlalchemy import select
from tests.unit.dashboard.dashboard_helpers import create_app, sign_up

from kapal.domain.names import APP_NAME
from kapal.services.context import Context
from kapal.services.deploy import release_slug
from kapal.store.models import Addon, App, Attachment, Dyno, Formation, Release, Slug, User

Browser = Callable[[], httpx.Client]


def releases_of(ctx: Context, name: str) -> list[tuple[int, str]]:
    with ctx.store.session() as s:
        app = s.scalar(select(App).where(App.name == name))
        assert app is not None
        rows = s.scalars(select(Release).where(Release.app_id == app.id).order_by(Release.version))
        return [(r.version, r.description) for r in rows]


def deploy(ctx: Context, name: str, process_types: dict[str, str]) -> None:
    """What a git push leaves behind: a slug, a release and a formation."""
    with ctx.store.session() as s:
        app = s.scalar(select(App).where(App.name == name))
        user = s.scalar(select(User))
        assert app is not None and user is not None
        slug = Slug(
            app_id=app.id,
            checksum="SHA256:0",
            size=1,
            process_types=process_types,
            commit="c0ffee42",
        )
        s.add(slug)
        s.flush()
        app_id, slug_id = app.id, slug.id
    release_slug(ctx, app_id, user, slug_id)


def test_strangers_are_sent_to_log_in(browser: Browser) -> None:
    client = browser()
    assert client.get("/dashboard").headers["location"] == "/login"
    r = client.get("/dashboard/apps/some-app")
    assert r.headers["location"] == "/login?next=/dashboard/apps/some-app"


def test_create_an_app_with_a_name(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    assert "You have no apps yet" in client.get("/dashboard").text
    assert create_app(client, token, "my-first-app") == "my-first-app"
    page = client.get("/dashboard/apps/my-first-app?notice=created")
    assert page.status_code == 200
    assert "App created." in page.text
    assert ctx.settings.web_url("my-first-app") in page.text
    assert ctx.settings.git_url("my-first-app") in page.text
    assert f"git remote add kapal {ctx.settings.git_url('my-first-app')}" in page.text
    assert "git push kapal main" in page.text
    listing = client.get("/dashboard").text
    assert 'href="/dashboard/apps/my-first-app"' in listing
    assert releases_of(ctx, "my-first-app") == [(1, "Initial release"), (2, "Enable Logplex")]


def test_create_an_app_without_a_name_gets_a_random_one(browser: Browser) -> None:
    client = browser()
    token = sign_up(client)
    first = create_app(client, token, "")
    second = create_app(client, token, "   ")
    assert APP_NAME.match(first) and APP_NAME.match(second)
    assert first != second
    listing = client.get("/dashboard").text
    assert first in listing and second in listing


def test_bad_and_taken_names_are_shown_on_the_form(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    r = client.post("/dashboard/new", data={"csrf_token": token, "name": "<b>Bad</b>"})
    assert r.status_code == 422
    assert "is invalid" in r.text
    assert "<b>Bad</b>" not in r.text  # escaped, in the message and in the form
    assert "&lt;b&gt;Bad&lt;/b&gt;" in r.text
    create_app(client, token, "taken-name")
    other = browser()
    r = other.post(
        "/dashboard/new",
        data={"csrf_token": sign_up(other, "bob@example.com"), "name": "taken-name"},
    )
    assert r.status_code == 409
    assert "Name taken-name is already taken." in r.text
    assert 'value="taken-name"' in r.text


def test_another_users_app_is_neither_shown_nor_changed(browser: Browser, ctx: Context) -> None:
    ada = browser()
    ada_token = sign_up(ada)
    create_app(ada, ada_token, "adas-app")
    ada.post(
        "/dashboard/apps/adas-app/config",
        data={"csrf_token": ada_token, "key": "SECRET_KEY", "value": "ada-only-value"},
    )
    bob = browser()
    bob_token = sign_up(bob, "bob@example.com")
    r = bob.get("/dashboard/apps/adas-app")
    assert r.status_code == 403
    assert "Access denied" in r.text
    assert "ada-only-value" not in r.text
    assert "adas-app" not in bob.get("/dashboard").text
    for path, data in {
        "/dashboard/apps/adas-app/config": {"key": "SECRET_KEY", "value": "bob was here"},
        "/dashboard/apps/adas-app/config/unset": {"key": "SECRET_KEY"},
        "/dashboard/apps/adas-app/formation": {"type": "web", "quantity": "0"},
        "/dashboard/apps/adas-app/restart": {},
        "/dashboard/apps/adas-app/destroy": {"confirm": "adas-app"},
    }.items():
        r = bob.post(path, data={**data, "csrf_token": bob_token})
        assert r.status_code == 403, path
        assert "ada-only-value" not in r.text
    assert len(releases_of(ctx, "adas-app")) == 3
    missing = bob.get("/dashboard/apps/no-such-app")
    assert missing.status_code == 404
    assert "Couldn&#39;t find that app." in missing.text


def test_config_set_and_unset_make_releases(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    name = create_app(client, token, "configured")
    r = client.post(
        f"/dashboard/apps/{name}/config",
        data={"csrf_token": token, "key": "GREETING", "value": "<script>alert(1)</script>"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/dashboard/apps/{name}?notice=config#config"
    page = client.get(r.headers["location"]).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page
    assert "a new release was created" in page
    r = client.post(
        f"/dashboard/apps/{name}/config/unset", data={"csrf_token": token, "key": "GREETING"}
    )
    assert r.status_code == 303
    assert releases_of(ctx, name)[2:] == [
        (3, "Set GREETING config vars"),
        (4, "Remove GREETING config vars"),
    ]
    r = client.post(
        f"/dashboard/apps/{name}/config/unset", data={"csrf_token": token, "key": "GREETING"}
    )
    assert r.headers["location"] == f"/dashboard/apps/{name}?notice=unchanged#config"
    assert len(releases_of(ctx, name)) == 4  # nothing to unset: no release
    page = client.get(f"/dashboard/apps/{name}").text
    assert "alert(1)" not in page
    versions = [int(v) for v in re.findall(r"<td>v(\d+)", page)]
    assert versions == [4, 3, 2, 1]  # newest first


def test_a_bad_config_key_is_shown_on_the_app_page(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    name = create_app(client, token, "bad-key")
    r = client.post(
        f"/dashboard/apps/{name}/config", data={"csrf_token": token, "key": "1-NO", "value": "x"}
    )
    assert r.status_code == 422
    assert "Config var name &#39;1-NO&#39; is invalid" in r.text
    assert "git push kapal main" in r.text  # the app page, with the error on top
    assert len(releases_of(ctx, name)) == 2


def test_formation_scale_and_dynos(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    name = create_app(client, token, "scaled")
    r = client.post(
        f"/dashboard/apps/{name}/formation",
        data={"csrf_token": token, "type": "web", "quantity": "2"},
    )
    assert r.status_code == 404
    assert "No process types on scaled" in r.text
    deploy(ctx, name, {"web": "python app.py", "worker": "python worker.py"})
    with ctx.store.session() as s:
        app = s.scalar(select(App).where(App.name == name))
        assert app is not None
        s.add(
            Dyno(
                app_id=app.id,
                name="web.1",
                type="web",
                command="python app.py",
                release_version=3,
                state="up",
            )
        )
    page = client.get(f"/dashboard/apps/{name}").text
    assert "web.1" in page and 'class="state state-up"' in page
    assert "python worker.py" in page
    r = client.post(
        f"/dashboard/apps/{name}/formation",
        data={"csrf_token": token, "type": "worker", "quantity": "2", "size": "standard-2x"},
    )
    assert r.status_code == 303
    assert r.headers["location"].endswith("?notice=scaled#formation")
    with ctx.store.session() as s:
        rows = {f.type: (f.quantity, f.size) for f in s.scalars(select(Formation))}
    assert rows == {"web": (1, "eco"), "worker": (2, "standard-2x")}
    assert "2 × Standard-2X" in client.get(f"/dashboard/apps/{name}").text
    r = client.post(
        f"/dashboard/apps/{name}/formation",
        data={"csrf_token": token, "type": "worker", "quantity": "lots"},
    )
    assert r.status_code == 422
    assert "Quantity must be a whole number." in r.text
    r = client.post(f"/dashboard/apps/{name}/restart", data={"csrf_token": token})
    assert r.status_code == 303


def test_destroy_needs_the_name_typed(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    name = create_app(client, token, "doomed")
    for confirm in ("", "dooomed"):
        r = client.post(
            f"/dashboard/apps/{name}/destroy", data={"csrf_token": token, "confirm": confirm}
        )
        assert r.status_code == 422
        assert "did not match app name" in r.text
    assert client.get(f"/dashboard/apps/{name}").status_code == 200
    r = client.post(f"/dashboard/apps/{name}/destroy", data={"csrf_token": token, "confirm": name})
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard?notice=destroyed"
    assert "App destroyed." in client.get(r.headers["location"]).text
    assert client.get(f"/dashboard/apps/{name}").status_code == 404


def test_pages_forbid_framing_and_foreign_resources(browser: Browser) -> None:
    client = browser()
    sign_up(client)
    r = client.get("/dashboard")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert re.search(r'(src|href)="(https?:)?//', r.text) is None


def test_static_files(browser: Browser) -> None:
    client = browser()
    css = client.get("/static/style.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "url(" not in css.text and "@import" not in css.text  # nothing from the network
    for path in ("/static/missing.css", "/static/..%2Fsessions.py", "/static/.hidden.css"):
        assert client.get(path).status_code == 404, path


def test_add_ons_are_listed_without_their_credentials(browser: Browser, ctx: Context) -> None:
    client = browser()
    token = sign_up(client)
    name = create_app(client, token, "with-db")
    assert "No add-ons." in client.get(f"/dashboard/apps/{name}").text
    secret_url = "postgres://u:hunter2-secret@localhost:15432/db"
    with ctx.store.session() as s:
        app = s.scalar(select(App).where(App.name == name))
        assert app is not None
        addon = Addon(
            name="postgresql-quiet-12345",
            app_id=app.id,
            service="kapal-postgresql",
            plan="essential-0",
            state="provisioned",
            config={"URL": secret_url},
        )
        s.add(addon)
        s.flush()
        s.add(Attachment(addon_id=addon.id, app_id=app.id, name="DATABASE"))
    page = client.get(f"/dashboard/apps/{name}").text
    assert "postgresql-quiet-12345" in page
    assert "kapal-postgresql:essential-0" in page
    assert "<code>DATABASE_URL</code>" in page
    assert "hunter2" not in page
