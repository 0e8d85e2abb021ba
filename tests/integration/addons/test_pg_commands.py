"""The pg:* use-cases against a real PostgreSQL and a real store: info, ps, kill, reset,
credentials:rotate (and its crash recovery) and promote."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import LiteralString

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from kapal.addons import pgsql
from kapal.addons.postgres import PostgresProvisioner
from kapal.domain.errors import Conflict, Forbidden, NotFound
from kapal.services import addons, pg
from kapal.services.apps import create_app
from kapal.services.auth import signup
from kapal.services.context import Context
from kapal.services.pg_credentials import ROTATING, finish_rotations, rotate_credentials
from kapal.services.pg_promote import promote
from kapal.services.releases import add_release, current_release
from kapal.store.models import Addon, App, Attachment, Release, User

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("drop_addons")]


@pytest.fixture
def app(ctx: Context, user: User) -> App:
    return create_app(ctx, user, "pg-app")


def current(ctx: Context, app: App) -> Release:
    with ctx.store.session() as s:
        release = current_release(s, app)
        assert release is not None
        return release


def url_of(ctx: Context, addon_name: str) -> str:
    with ctx.store.session() as s:
        row = s.query(Addon).filter_by(name=addon_name).one()
        return row.config["URL"]


def works(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@contextmanager
def running_query(url: str, sql: LiteralString) -> Iterator[list[BaseException]]:
    """Run `sql` on its own connection in a thread; the list gets what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql)
        except BaseException as exc:  # handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield raised
    finally:
        thread.join(30)
        assert not thread.is_alive(), "the query thread did not stop"


def wait_for(check: Callable[[], list[int]], what: str, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_info_counts_real_tables_connections_and_size(ctx: Context, user: User, app: App) -> None:
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql:essential-1")
    url = url_of(ctx, view.addon.name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE visits (id serial PRIMARY KEY, at timestamptz)")
        conn.execute("CREATE TABLE notes (body text)")
        (report,) = pg.database_reports(ctx, user, "pg-app")
    info = report.info
    assert info is not None
    assert info.tables == 2
    assert info.connections == 1  # the one above; Kapal's own are not counted
    assert info.connection_limit == 40
    assert info.size > 1_000_000 and not info.writes_refused
    assert info.version.split(".")[0].isdigit()
    rows = dict(pg.info_rows(report))
    assert rows["Plan"] == "essential-1"
    assert rows["Status"] == "Available"
    assert rows["Connections"] == "1/40"
    assert rows["Tables"] == "2"
    assert rows["Data Size"].endswith(" / 10 GB (" + f"{info.size * 100 / (10 << 30):.2f}%)")
    assert rows["Add-on"] == view.addon.name
    assert report.database.config_vars == ("DATABASE_URL",)
    by_var = pg.database_reports(ctx, user, "pg-app", "DATABASE_URL")
    assert by_var[0].database.addon.id == view.addon.id


def test_ps_shows_a_running_query_and_kill_cancels_it(ctx: Context, user: User, app: App) -> None:
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    url = url_of(ctx, view.addon.name)

    def sleeping() -> list[int]:
        _, backends = pg.database_sessions(ctx, user, "pg-app", "DATABASE")
        return [b.pid for b in backends if "pg_sleep" in b.query and b.state == "active"]

    with running_query(url, "SELECT pg_sleep(60)") as raised:
        (pid,) = wait_for(sleeping, "the pg_sleep query in pg:ps")
        _, backends = pg.database_sessions(ctx, user, "pg-app", "DATABASE")
        assert all(b.query != "" for b in backends)
        assert pg.end_session(ctx, user, "pg-app", "DATABASE", pid).addon.id == view.addon.id
    assert isinstance(raised[0], psycopg.errors.QueryCanceled)

    with running_query(url, "SELECT pg_sleep(60)") as raised:
        (pid,) = wait_for(sleeping, "the second pg_sleep query")
        pg.end_session(ctx, user, "pg-app", view.addon.name, pid, force=True)
    assert isinstance(raised[0], psycopg.OperationalError)  # the connection itself ended


def test_kill_refuses_pids_of_other_databases_and_kapal_own(
    ctx: Context, user: User, app: App, admin_url: str
) -> None:
    mine = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    create_app(ctx, user, "other-app")
    theirs = addons.create_addon(ctx, user, "other-app", "kapal-postgresql")
    their_url = url_of(ctx, theirs.addon.name)
    with psycopg.connect(their_url, autocommit=True) as conn:
        (their_pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        with pytest.raises(NotFound, match=f"Process {their_pid} is not a connection to"):
            pg.end_session(ctx, user, "pg-app", "DATABASE", their_pid, force=True)
        assert conn.execute("SELECT 1").fetchone() == (1,)  # untouched
        _, seen = pg.database_sessions(ctx, user, "pg-app", "DATABASE", include_idle=True)
        assert their_pid not in [b.pid for b in seen]
    # A superuser session in the app's own database (Kapal's) is neither shown nor reachable.
    own_db = make_conninfo(admin_url, dbname=pgsql.database_name(mine.addon.name))
    with psycopg.connect(own_db, autocommit=True) as admin:
        (admin_pid,) = admin.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        with pytest.raises(NotFound):
            pg.end_session(ctx, user, "pg-app", "DATABASE", admin_pid, force=True)
        _, seen = pg.database_sessions(ctx, user, "pg-app", "DATABASE", include_idle=True)
        assert admin_pid not in [b.pid for b in seen]
        assert admin.execute("SELECT 1").fetchone() == (1,)


def test_databases_are_named_by_attachment_var_or_addon_and_only_for_their_users(
    ctx: Context, user: User, app: App
) -> None:
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    with ctx.store.session() as s:
        for ident in ("DATABASE", "DATABASE_URL", view.addon.name, view.addon.id):
            assert pg.find_database(s, user, "pg-app", ident).addon.id == view.addon.id
        with pytest.raises(
            NotFound, match=r"Unknown database: NOPE\. Valid options are: DATABASE_URL"
        ):
            pg.find_database(s, user, "pg-app", "NOPE")
    mallory = signup(ctx, "mallory@example.com", "password123")[0]
    with pytest.raises(Forbidden):
        pg.database_reports(ctx, mallory, "pg-app")
    create_app(ctx, user, "empty-app")
    with pytest.raises(NotFound, match="empty-app has no Postgres databases"):
        pg.database_sessions(ctx, user, "empty-app", "DATABASE")


def test_reset_empties_the_database_and_keeps_its_url_and_isolation(
    ctx: Context, user: User, app: App, admin_url: str
) -> None:
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    url = url_of(ctx, view.addon.name)
    before = current(ctx, app).version
    held = psycopg.connect(url, autocommit=True)  # an app's open connection must not block it
    held.execute("CREATE TABLE t (x int)")
    pg.reset_database(ctx, user, "pg-app", "DATABASE")
    held.close()
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
        conn.execute("CREATE TABLE t (x int)")  # and it is the role's own again
    ident = pgsql.database_name(view.addon.name)
    with psycopg.connect(admin_url) as conn:
        public = conn.execute(
            "SELECT has_database_privilege('public', %s, 'CONNECT')", (ident,)
        ).fetchone()
    assert public == (False,)
    assert current(ctx, app).version == before  # same URL: nothing to release


def test_rotate_gives_every_attachment_a_new_working_url_in_a_release(
    ctx: Context, user: User, app: App
) -> None:
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    old = url_of(ctx, view.addon.name)
    # A second attachment on this app and one on another app carry the same URL.
    other = create_app(ctx, user, "other-app")
    with ctx.store.session() as s:
        s.add(Attachment(addon_id=view.addon.id, app_id=app.id, name="REPORTS"))
        s.add(Attachment(addon_id=view.addon.id, app_id=other.id, name="SHARED"))
        base = current_release(s, app)
        assert base is not None
        add_release(s, app, user, "Set", slug_id=None, config={**base.config, "REPORTS_URL": old})
        add_release(s, other, user, "Set", slug_id=None, config={"SHARED_URL": old, "K": "v"})
    before = {a.name: current(ctx, a).version for a in (app, other)}
    held = psycopg.connect(old, autocommit=True)

    rotation = rotate_credentials(ctx, user, "pg-app", "DATABASE")

    new = url_of(ctx, view.addon.name)
    assert new != old and works(new) and not works(old)
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")  # logged in with the old password: ended
    held.close()
    config = current(ctx, app).config
    assert config["DATABASE_URL"] == config["REPORTS_URL"] == new
    assert current(ctx, other).config == {"SHARED_URL": new, "K": "v"}
    assert {a.name: r.version for a, r in rotation.releases} == {
        name: v + 1 for name, v in before.items()
    }
    release = current(ctx, app)
    assert release.description == (
        f"Rotate credentials of {view.addon.name} (DATABASE_URL, REPORTS_URL)"
    )
    with ctx.store.session() as s:
        assert ROTATING not in s.get(Addon, view.addon.id).config  # type: ignore[union-attr]


def test_an_interrupted_rotation_is_rolled_forward(
    ctx: Context, user: User, app: App, admin_url: str
) -> None:
    view = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    old = url_of(ctx, view.addon.name)
    provisioner = PostgresProvisioner(admin_url)
    # A crash after step 1: the pending URL is stored, the server still has the old password.
    pending = provisioner.new_credentials(view.addon.name)["URL"]
    with ctx.store.session() as s:
        row = s.get(Addon, view.addon.id)
        assert row is not None
        row.config = {**row.config, ROTATING: pending}
    assert works(old) and not works(pending)  # the app's URL still works
    # Running the command again reuses the pending URL rather than making another.
    rotate_credentials(ctx, user, "pg-app", view.addon.name)
    assert url_of(ctx, view.addon.name) == pending == current(ctx, app).config["DATABASE_URL"]

    # A crash after step 2: the server has the new password, the config vars the old one.
    second = provisioner.new_credentials(view.addon.name)["URL"]
    with ctx.store.session() as s:
        row = s.get(Addon, view.addon.id)
        assert row is not None
        row.config = {**row.config, ROTATING: second}
    provisioner.apply_credentials(view.addon.name, {"URL": second})
    assert not works(current(ctx, app).config["DATABASE_URL"])
    assert finish_rotations(ctx) == 1  # what the API does when it starts again
    assert current(ctx, app).config["DATABASE_URL"] == second == url_of(ctx, view.addon.name)
    assert works(second)
    assert finish_rotations(ctx) == 0


def test_promote_swaps_database_url_and_keeps_the_old_one_reachable(
    ctx: Context, user: User, app: App
) -> None:
    first = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql")
    second = addons.create_addon(ctx, user, "pg-app", "kapal-postgresql:essential-1")
    (second_var,) = second.config_vars
    first_url, second_url = url_of(ctx, first.addon.name), url_of(ctx, second.addon.name)
    before = current(ctx, app).version

    promotion = promote(ctx, user, "pg-app", second_var)

    assert promotion.release.version == before + 1
    assert promotion.previous == first.addon.name
    kept = promotion.kept_as
    assert kept is not None and kept.startswith("KAPAL_POSTGRESQL_") and kept != second_var
    config = current(ctx, app).config
    assert config["DATABASE_URL"] == config[second_var] == second_url
    assert config[kept] == first_url and works(config[kept])
    assert promotion.database.config_vars == ("DATABASE_URL", second_var)
    views = {v.addon.name: v for v in addons.list_addons(ctx, user, "pg-app")}
    assert views[first.addon.name].config_vars == [kept]
    assert sorted(views[second.addon.name].config_vars) == sorted(["DATABASE_URL", second_var])
    (report,) = pg.database_reports(ctx, user, "pg-app", "DATABASE")
    assert report.database.addon.name == second.addon.name

    with pytest.raises(Conflict, match="already the DATABASE"):
        promote(ctx, user, "pg-app", "DATABASE_URL")
    # Back again: the first one has an attachment of its own, so none is made for the second.
    again = promote(ctx, user, "pg-app", kept)
    assert (again.previous, again.kept_as) == (second.addon.name, second_var)
    config = current(ctx, app).config
    assert config["DATABASE_URL"] == first_url and config[second_var] == second_url
