"""The Postgres storage quota against a real server: over it writes are refused and the app
is told in its log stream; back under, they are allowed again. Quotas are made tiny (or huge)
through the injectable limit, so no test writes a gigabyte."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import LiteralString

import psycopg
import pytest

from kapal.addons.catalog import Plan
from kapal.domain.logline import LogLine
from kapal.services import addons, pg
from kapal.services.apps import create_app
from kapal.services.context import Context
from kapal.services.pg_quota import StorageQuotaChecker, check_storage
from kapal.store.models import Addon, User

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("drop_addons")]

TINY = 1  # byte: every database is over it
HUGE = 1 << 40


def tiny(_: Plan) -> int:
    return TINY


def huge(_: Plan) -> int:
    return HUGE


@pytest.fixture
def logs(ctx: Context) -> Iterator[socket.socket]:
    """The log hub's socket, played by the test."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ctx.settings.log_socket.parent.mkdir(parents=True, exist_ok=True)
    sock.bind(str(ctx.settings.log_socket))
    sock.settimeout(5)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[LogLine]:
    lines = []
    sock.setblocking(False)
    try:
        while True:
            lines += [LogLine.decode(d) for d in sock.recv(65536).split(b"\n")]
    except BlockingIOError:
        return lines
    finally:
        sock.setblocking(True)


def url_of(ctx: Context, name: str) -> str:
    with ctx.store.session() as s:
        return s.query(Addon).filter_by(name=name).one().config["URL"]


def refused(url: str, sql: LiteralString) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(sql)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_over_quota_refuses_writes_and_says_so_then_allows_them_back(
    ctx: Context, user: User, logs: socket.socket
) -> None:
    app = create_app(ctx, user, "quota-app")
    view = addons.create_addon(ctx, user, "quota-app", "kapal-postgresql")
    url = url_of(ctx, view.addon.name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id serial PRIMARY KEY, body text)")
        conn.execute("INSERT INTO items (body) VALUES ('a'), ('b')")
    assert check_storage(ctx) == []  # a few MB against the plan's 1 GB
    received(logs)  # the add-on's release events

    (change,) = check_storage(ctx, limit=tiny)

    assert (change.addon, change.refused, change.limit) == (view.addon.name, True, TINY)
    (line,) = received(logs)
    assert (line.app_id, line.source, line.dyno) == (app.id, "app", "kapal-postgres")
    assert line.message.startswith(f"{view.addon.name} is over its plan's storage (")
    assert "INSERT, UPDATE and CREATE are refused" in line.message
    assert refused(url, "INSERT INTO items (body) VALUES ('c')")
    assert refused(url, "UPDATE items SET body = 'x'")
    assert refused(url, "CREATE TABLE more (x int)")
    assert refused(url, "CREATE SCHEMA other")
    assert not refused(url, "DELETE FROM items WHERE body = 'a'")  # the owner can make room
    assert not refused(url, "SELECT count(*) FROM items")
    (report,) = pg.database_reports(ctx, user, "quota-app")
    assert dict(pg.info_rows(report))["Status"] == "Over storage quota: writes refused"

    # An owner may grant itself back what it lost; the next check takes it away again,
    # without telling the app a second time.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("GRANT INSERT ON items TO CURRENT_USER")
        conn.execute("INSERT INTO items (body) VALUES ('sneaked')")
    assert check_storage(ctx, limit=tiny) == []
    assert received(logs) == []
    assert refused(url, "INSERT INTO items (body) VALUES ('d')")

    (change,) = check_storage(ctx, limit=huge)

    assert change.refused is False
    (line,) = received(logs)
    assert line.message.startswith(f"{view.addon.name} is back under its plan's storage (")
    assert not refused(url, "INSERT INTO items (body) VALUES ('e')")
    assert not refused(url, "UPDATE items SET body = 'y'")
    assert not refused(url, "CREATE TABLE more (x int)")
    assert not refused(url, "INSERT INTO more VALUES (1)")
    assert check_storage(ctx, limit=huge) == []
    (report,) = pg.database_reports(ctx, user, "quota-app")
    assert dict(pg.info_rows(report))["Status"] == "Available"


def test_only_the_database_over_its_plan_is_limited(ctx: Context, user: User) -> None:
    create_app(ctx, user, "quota-app")
    small = addons.create_addon(ctx, user, "quota-app", "kapal-postgresql:essential-0")
    large = addons.create_addon(ctx, user, "quota-app", "kapal-postgresql:essential-1")
    for view in (small, large):
        with psycopg.connect(url_of(ctx, view.addon.name), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")

    def by_plan(plan: Plan) -> int:
        return TINY if plan.name == "essential-0" else HUGE

    changes = check_storage(ctx, limit=by_plan)

    assert [(c.addon, c.refused) for c in changes] == [(small.addon.name, True)]
    assert refused(url_of(ctx, small.addon.name), "INSERT INTO t VALUES (1)")
    assert not refused(url_of(ctx, large.addon.name), "INSERT INTO t VALUES (1)")
    check_storage(ctx, limit=huge)  # leave the server as it was


def test_the_checker_thread_checks_until_stopped(ctx: Context, user: User) -> None:
    create_app(ctx, user, "quota-app")
    view = addons.create_addon(ctx, user, "quota-app", "kapal-postgresql")
    url = url_of(ctx, view.addon.name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
    checker = StorageQuotaChecker(ctx, interval=0.05, limit=tiny)
    checker.start()
    try:
        deadline = time.monotonic() + 10
        while not refused(url, "INSERT INTO t VALUES (1)"):
            assert time.monotonic() < deadline, "the checker never refused writes"
            time.sleep(0.05)
    finally:
        checker.stop()
    assert checker.run_pass() == []  # already refused: nothing changes
    StorageQuotaChecker(ctx, limit=huge).run_pass()
    assert not refused(url, "INSERT INTO t VALUES (1)")
