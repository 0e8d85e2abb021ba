"""Add-on use-cases end to end against a real PostgreSQL and a real store."""

from __future__ import annotations

import socket
from dataclasses import replace

import psycopg
import pytest
from sqlalchemy import select
from tests.integration.addons.conftest import exists

from kapal.addons import pgsql
from kapal.addons.errors import ProvisionError
from kapal.domain.errors import Conflict, Forbidden, InvalidParams, NotFound
from kapal.services import addons
from kapal.services.apps import create_app
from kapal.services.auth import signup
from kapal.services.context import Context
from kapal.services.releases import add_release, current_release
from kapal.store.models import Addon, App, Attachment, Release, Slug, User

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def app(ctx: Context, user: User) -> App:
    """An app whose current release has a slug with a release phase and a config var."""
    app = create_app(ctx, user, "pg-app")
    with ctx.store.session() as s:
        slug = Slug(
            app_id=app.id,
            checksum="SHA256:x",
            size=1,
            process_types={"web": "gunicorn app", "release": "python migrate.py"},
        )
        s.add(slug)
        s.flush()
        add_release(
            s,
            app,
            user,
            "Deploy abc",
            slug_id=slug.id,
            config={"KEEP": "me"},
            run_release_phase=False,
        )
    return app


def current(ctx: Context, app: App) -> Release:
    with ctx.store.session() as s:
        release = current_release(s, app)
        assert release is not None
        return release


def listen_for_logs(ctx: Context) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ctx.settings.log_socket.parent.mkdir(parents=True, exist_ok=True)
    sock.bind(str(ctx.settings.log_socket))
    sock.setblocking(False)
    return sock


@pytest.mark.usefixtures("drop_addons")
def test_create_attaches_database_url_in_a_live_release(
    ctx: Context, user: User, app: App, admin_url: str
) -> None:
    before = current(ctx, app)
    logs = listen_for_logs(ctx)
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")

    assert view.addon.state == "provisioned"
    assert view.addon.name.startswith("postgresql-")
    assert view.choice.plan_name == "kapal-postgresql:essential-0"
    assert view.config_vars == ["DATABASE_URL"]
    release = current(ctx, app)
    assert release.version == before.version + 1
    assert release.description == f"Attach DATABASE (@ref:{view.addon.name})"
    # Heroku skips the release phase for add-on changes: live at once, same slug.
    assert (release.status, release.release_command) == ("succeeded", None)
    assert release.slug_id == before.slug_id
    assert release.config["KEEP"] == "me"
    with psycopg.connect(release.config["DATABASE_URL"]) as conn:
        conn.execute("CREATE TABLE t (x int)")
    events = [logs.recv(65536).decode(errors="replace") for _ in range(2)]
    assert f"Attach DATABASE (@ref:{view.addon.name}) by user owner@example.com" in events[0]
    logs.close()


@pytest.mark.usefixtures("drop_addons")
def test_second_database_gets_a_color_and_the_heroku_alias_its_prefix(
    ctx: Context, user: User, app: App
) -> None:
    first = addons.create_addon(ctx, user, "pg-app", "heroku-postgresql:essential-1")
    second = addons.create_addon(ctx, user, "pg-app", "heroku-postgresql")
    assert first.config_vars == ["DATABASE_URL"]
    assert first.choice.plan_name == "heroku-postgresql:essential-1"
    (var,) = second.config_vars
    assert var.startswith("HEROKU_POSTGRESQL_") and var.endswith("_URL")
    config = current(ctx, app).config
    assert config["DATABASE_URL"] != config[var]
    listed = addons.list_addons(ctx, user, "pg-app")
    assert [v.addon.name for v in listed] == [first.addon.name, second.addon.name]


@pytest.mark.usefixtures("drop_addons")
def test_chosen_name_and_attachment(ctx: Context, user: User, app: App) -> None:
    view = addons.create_addon(
        ctx,
        user,
        "pg-app",
        "kapal-postgresql:standard-0",
        attachment_name="ANALYTICS",
        name="my-analytics",
    )
    assert view.addon.name == "my-analytics"
    assert "ANALYTICS_URL" in current(ctx, app).config
    assert addons.get_addon(ctx, user, "pg-app", "my-analytics").addon.id == view.addon.id
    assert addons.get_addon(ctx, user, "pg-app", view.addon.id).addon.name == "my-analytics"
    assert addons.get_addon(ctx, user, "pg-app", "ANALYTICS_URL").addon.id == view.addon.id
    with pytest.raises(Conflict, match="already taken"):
        addons.create_addon(ctx, user, "pg-app", "kapal-postgresql", name="my-analytics")
    with pytest.raises(Conflict, match="attachment named ANALYTICS"):
        addons.create_addon(ctx, user, "pg-app", "kapal-postgresql", attachment_name="ANALYTICS")


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("kapal-mongodb", {}, "Couldn't find add-on service"),
        ("kapal-postgresql:huge", {}, "Known plans: kapal-postgresql:essential-0"),
        ("kapal-postgresql", {"name": "Bad Name"}, "Add-on name"),
        ("kapal-postgresql", {"attachment_name": "lower"}, "Attachment name"),
        ("kapal-postgresql", {"options": {"version": "16"}}, "takes no options"),
    ],
)
def test_bad_requests_change_nothing(
    ctx: Context, user: User, app: App, spec: str, kwargs: dict[str, object], message: str
) -> None:
    before = current(ctx, app).version
    with pytest.raises(InvalidParams, match=message):
        addons.create_addon(ctx, user, "pg-app", spec, **kwargs)  # type: ignore[arg-type]
    assert addons.list_addons(ctx, user, "pg-app") == []
    assert current(ctx, app).version == before


def test_failed_provisioning_leaves_no_row_and_no_release(
    ctx: Context, user: User, app: App
) -> None:
    broken = replace(
        ctx,
        settings=replace(
            ctx.settings, postgres_admin_url="postgresql://postgres@127.0.0.1:1/postgres"
        ),
    )
    before = current(ctx, app).version
    with pytest.raises(ProvisionError, match=r"Could not provision postgresql-.*connection failed"):
        addons.create_addon(broken, user, "pg-app", "kapal-postgresql")
    assert addons.list_addons(ctx, user, "pg-app") == []
    assert current(ctx, app).version == before


@pytest.mark.usefixtures("drop_addons")
def test_destroy_detaches_then_drops(ctx: Context, user: User, app: App, admin_url: str) -> None:
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    gone = addons.destroy_addon(ctx, user, "pg-app", view.addon.name)
    assert gone.addon.state == "deprovisioned"
    release = current(ctx, app)
    assert release.description == f"Detach DATABASE (@ref:{view.addon.name})"
    assert "DATABASE_URL" not in release.config and release.config["KEEP"] == "me"
    assert release.status == "succeeded"
    assert exists(admin_url, pgsql.database_name(view.addon.name)) == (False, False)
    assert addons.list_addons(ctx, user, "pg-app") == []
    with ctx.store.session() as s:
        assert s.scalars(select(Attachment)).all() == []
    with pytest.raises(NotFound, match="Couldn't find that add-on"):
        addons.destroy_addon(ctx, user, "pg-app", view.addon.name)


@pytest.mark.usefixtures("drop_addons")
def test_a_failed_deprovision_can_be_retried(ctx: Context, user: User, app: App) -> None:
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    broken = replace(
        ctx,
        settings=replace(
            ctx.settings, postgres_admin_url="postgresql://postgres@127.0.0.1:1/postgres"
        ),
    )
    with pytest.raises(ProvisionError, match="Could not deprovision"):
        addons.destroy_addon(broken, user, "pg-app", view.addon.name)
    (stuck,) = addons.list_addons(ctx, user, "pg-app")
    assert stuck.addon.state == "deprovisioning"
    assert "DATABASE_URL" not in current(ctx, app).config  # the app stopped using it first
    addons.destroy_addon(ctx, user, "pg-app", view.addon.name)
    assert addons.list_addons(ctx, user, "pg-app") == []


@pytest.mark.usefixtures("drop_addons")
def test_destroying_an_app_deprovisions_its_addons(
    ctx: Context, user: User, app: App, admin_url: str
) -> None:
    one = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    two = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    addons.deprovision_app_addons(ctx, app.id)
    for view in (one, two):
        assert exists(admin_url, pgsql.database_name(view.addon.name)) == (False, False)
    assert addons.list_addons(ctx, user, "pg-app") == []


@pytest.mark.usefixtures("drop_addons")
def test_recover_removes_what_a_crash_left_half_made(
    ctx: Context, user: User, app: App, admin_url: str
) -> None:
    live = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    # A crash after the role was made, before the database and the attach transaction.
    with ctx.store.session() as s:
        s.add(
            Addon(
                name="crashed-one",
                app_id=app.id,
                service="kapal-postgresql",
                plan="essential-0",
                state="provisioning",
            )
        )
    ident = pgsql.database_name("crashed-one")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(pgsql.create_role(ident, pgsql.scram_verifier("x"), 20))
    assert addons.recover_addons(ctx) == 1
    assert exists(admin_url, ident) == (False, False)
    assert [v.addon.name for v in addons.list_addons(ctx, user, "pg-app")] == [live.addon.name]


def test_other_users_cannot_see_or_touch_addons(ctx: Context, user: User, app: App) -> None:
    mallory = signup(ctx, "mallory@example.com", "password123")[0]
    with pytest.raises(Forbidden):
        addons.create_addon(ctx, mallory, "pg-app", "kapal-postgresql")
    with pytest.raises(Forbidden):
        addons.list_addons(ctx, mallory, "pg-app")
    assert addons.list_user_addons(ctx, mallory) == []
