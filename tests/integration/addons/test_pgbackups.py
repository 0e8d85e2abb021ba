"""pg:backups use-cases against a real PostgreSQL, pg_dump and pg_restore."""

from __future__ import annotations

import logging
import stat
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from kapal.addons import pgsql
from kapal.addons.pgbackups import Credentials, PgTools
from kapal.addons.postgres_cluster import find_bin_dir
from kapal.domain.errors import Conflict, Forbidden, NotFound
from kapal.services import pgbackups
from kapal.services.addons import attach_addon, create_addon, destroy_addon, list_addons
from kapal.services.apps import create_app, destroy_app
from kapal.services.auth import signup
from kapal.services.config import get_config
from kapal.services.context import Context
from kapal.services.pgbackup_schedules import BackupScheduler, set_schedule
from kapal.store.models import PgBackup, PgBackupSchedule, User

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("drop_addons")]


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def database_url(ctx: Context, user: User, app: str, attachment: str = "DATABASE") -> str:
    return get_config(ctx, user, app)[f"{attachment}_URL"]


@pytest.fixture
def url(ctx: Context, user: User) -> str:
    """The DATABASE_URL of app `demo`, holding table `notes` with three rows."""
    create_app(ctx, user, "demo")
    create_addon(ctx, user, "demo", "kapal-postgresql")
    url = database_url(ctx, user, "demo")
    with connect(url) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    return url


def notes(url: str) -> list[tuple[object, ...]]:
    with connect(url) as conn:
        return conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()


ROWS = [(1, "one"), (2, "two"), (3, "three")]


def test_capture_writes_a_private_pg_dump_file(ctx: Context, user: User, url: str) -> None:
    view = pgbackups.capture(ctx, user, "demo")
    backup = view.backup
    assert (view.name, backup.status, backup.error) == ("b001", "succeeded", None)
    path = pgbackups.backup_file(ctx.settings, backup)
    assert path == ctx.settings.backups_dir / backup.app_id / f"{backup.id}.dump"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert backup.size_bytes == path.stat().st_size > 0
    assert backup.database_bytes and backup.database_bytes > backup.size_bytes
    assert backup.finished_at is not None
    listing = subprocess.run(
        [str(find_bin_dir() / "pg_restore"), "--list", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "Format: CUSTOM" in listing
    assert "TABLE DATA public notes" in listing
    assert not list(path.parent.glob("*.partial"))
    assert pgbackups.capture(ctx, user, "demo").name == "b002"
    names = [v.name for v in pgbackups.list_backups(ctx, user, "demo")]
    assert names == ["b002", "b001"]
    # A restart of the API keeps finished backups and their files.
    assert pgbackups.recover_backups(ctx) == 0
    assert path.is_file()
    assert pgbackups.get_backup(ctx, user, "demo", "b001").backup.status == "succeeded"


def test_the_files_of_a_destroyed_app_go(ctx: Context, user: User, url: str) -> None:
    view = pgbackups.capture(ctx, user, "demo")
    folder = pgbackups.backup_file(ctx.settings, view.backup).parent
    destroy_app(ctx, user, "demo", confirm="demo")
    assert pgbackups.sweep_files(ctx) == 1
    assert not folder.exists()


def test_restore_brings_the_data_back_and_keeps_a_copy_first(
    ctx: Context, user: User, url: str
) -> None:
    pgbackups.capture(ctx, user, "demo")
    with connect(url) as conn:
        conn.execute("DROP TABLE notes")
        conn.execute("CREATE TABLE later (id int)")
        conn.execute("INSERT INTO later VALUES (7)")
    done = pgbackups.restore_backup(ctx, user, "demo", None, None)
    assert notes(url) == ROWS
    assert (done.source.name, done.safety_copy.name) == ("b001", "r001")
    assert done.safety_copy.backup.status == "succeeded"
    with connect(url) as conn:  # --clean replaces what the dump holds, nothing else
        assert conn.execute("SELECT id FROM later").fetchall() == [(7,)]
        conn.execute("DROP TABLE later")
    # The copy taken before the restore puts back what the database held then.
    again = pgbackups.restore_backup(ctx, user, "demo", "r001", "DATABASE_URL")
    assert again.safety_copy.name == "r002"
    with connect(url) as conn:
        assert conn.execute("SELECT id FROM later").fetchall() == [(7,)]


def test_restore_into_another_database_and_from_another_app(
    ctx: Context, user: User, url: str
) -> None:
    pgbackups.capture(ctx, user, "demo")
    create_addon(ctx, user, "demo", "kapal-postgresql", attachment_name="REPORTS")
    reports = database_url(ctx, user, "demo", "REPORTS")
    pgbackups.restore_backup(ctx, user, "demo", "b001", "REPORTS")
    assert notes(reports) == ROWS
    with connect(reports) as conn:  # owned by the target's own role, not the source's
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'notes'")
        assert owner.fetchone() == (Credentials.from_url(reports).user,)

    create_app(ctx, user, "staging")
    create_addon(ctx, user, "staging", "kapal-postgresql")
    staging = database_url(ctx, user, "staging")
    done = pgbackups.restore_backup(ctx, user, "staging", "demo::b001", None)
    assert (done.source.app.name, done.safety_copy.app.name) == ("demo", "staging")
    assert notes(staging) == ROWS


def test_a_database_attached_from_another_app_is_named_as_pg_info_names_it(
    ctx: Context, user: User, url: str
) -> None:
    """`kapal pg:backups:capture` sends the add-on's name; an attached one is found too."""
    create_app(ctx, user, "reporting")
    [addon] = list_addons(ctx, user, "demo")
    attach_addon(ctx, user, addon.addon.name, "reporting", "SHARED")
    for name in (addon.addon.name, "SHARED", "SHARED_URL"):
        view = pgbackups.capture(ctx, user, "reporting", name)
        assert view.backup.status == "succeeded", view.backup.error
    with pytest.raises(NotFound, match="Unknown database: NOPE"):
        pgbackups.capture(ctx, user, "reporting", "NOPE")
    create_app(ctx, user, "empty")
    with pytest.raises(NotFound, match="empty has no Postgres databases"):
        pgbackups.capture(ctx, user, "empty")


def test_another_users_backup_cannot_be_restored_or_read(
    ctx: Context, user: User, url: str
) -> None:
    pgbackups.capture(ctx, user, "demo")
    other = signup(ctx, "other@example.com", "password123")[0]
    create_app(ctx, other, "theirs")
    create_addon(ctx, other, "theirs", "kapal-postgresql")
    with pytest.raises(Forbidden):
        pgbackups.restore_backup(ctx, other, "theirs", "demo::b001", None)
    with pytest.raises(Forbidden):
        pgbackups.download(ctx, other, "demo", "b001")
    with pytest.raises(Forbidden):
        pgbackups.list_backups(ctx, other, "demo")
    with pytest.raises(NotFound):
        pgbackups.restore_backup(ctx, other, "theirs", "nowhere::b001", None)
    with pytest.raises(NotFound):  # no backups of its own yet
        pgbackups.restore_backup(ctx, other, "theirs", None, None)


def test_a_failed_capture_leaves_no_file(
    ctx: Context, user: User, url: str, admin_url: str
) -> None:
    # A table the add-on's role may not read: pg_dump starts writing, then fails.
    database = Credentials.from_url(url).database
    admin_db = psycopg.conninfo.make_conninfo(admin_url, dbname=database)
    with connect(admin_db) as conn:
        conn.execute("CREATE TABLE secret (x int)")
        conn.execute("REVOKE ALL ON secret FROM PUBLIC")
    view = pgbackups.capture(ctx, user, "demo")
    assert view.backup.status == "failed"
    assert view.backup.error is not None and "permission denied" in view.backup.error
    assert view.backup.size_bytes is None
    folder = ctx.settings.backups_dir / view.backup.app_id
    assert list(folder.iterdir()) == []
    with pytest.raises(NotFound):
        pgbackups.download(ctx, user, "demo", "b001")
    with pytest.raises(Conflict):  # a failed backup is no source for a restore
        pgbackups.restore_backup(ctx, user, "demo", "b001", None)


def test_capture_of_a_database_that_is_gone_fails(
    ctx: Context, user: User, url: str, admin_url: str
) -> None:
    database = Credentials.from_url(url).database
    with connect(admin_url) as conn:
        conn.execute(pgsql.drop_database(database, force=True))
    view = pgbackups.capture(ctx, user, "demo")
    assert view.backup.status == "failed"
    assert "does not exist" in (view.backup.error or "")
    assert Credentials.from_url(url).password not in (view.backup.error or "")
    assert not (ctx.settings.backups_dir / view.backup.app_id).exists() or not list(
        (ctx.settings.backups_dir / view.backup.app_id).iterdir()
    )


@pytest.fixture
def spy_bin(tmp_path: Path) -> Callable[[str], Path]:
    """A bin directory whose pg_dump and pg_restore record their argv and whether they got
    PGPASSWORD, then run the real ones (or `body` instead, when given)."""

    def make(body: str = "") -> Path:
        real = find_bin_dir()
        folder = tmp_path / "spy-bin"
        folder.mkdir(exist_ok=True)
        for tool in ("pg_dump", "pg_restore"):
            script = folder / tool
            script.write_text(
                "#!/bin/sh\n"
                f'cat /proc/$$/cmdline > "{folder}/{tool}.cmdline"\n'
                f'[ -n "$PGPASSWORD" ] && echo yes > "{folder}/{tool}.password"\n'
                + (body or f'exec "{real / tool}" "$@"\n')
            )
            script.chmod(0o755)
        return folder

    return make


def test_the_password_goes_through_the_environment_never_argv(
    ctx: Context, user: User, url: str, spy_bin: Callable[[str], Path]
) -> None:
    password = Credentials.from_url(url).password
    folder = spy_bin("")
    tools = PgTools(folder)
    view = pgbackups.capture(ctx, user, "demo", tools=tools)
    assert view.backup.status == "succeeded"
    pgbackups.restore_backup(ctx, user, "demo", "b001", None, tools=tools)
    for tool in ("pg_dump", "pg_restore"):
        cmdline = (folder / f"{tool}.cmdline").read_bytes().decode()
        assert password not in cmdline
        assert "--no-password" in cmdline
        assert (folder / f"{tool}.password").read_text() == "yes\n"
    assert "--role=" + Credentials.from_url(url).user in (folder / "pg_restore.cmdline").read_text()


def test_error_messages_and_logs_never_show_the_password(
    ctx: Context,
    user: User,
    url: str,
    spy_bin: Callable[[str], Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = Credentials.from_url(url).password
    tools = PgTools(spy_bin('echo "pg_dump: error: leaked $PGPASSWORD here" >&2\nexit 1\n'))
    with caplog.at_level(logging.DEBUG):
        view = pgbackups.capture(ctx, user, "demo", tools=tools)
    assert view.backup.status == "failed"
    assert view.backup.error == "pg_dump failed (exit status 1): leaked ******** here"
    assert password not in caplog.text
    assert "leaked ******** here" in caplog.text


def test_deleted_backups_go_with_their_file_and_their_name_is_not_reused(
    ctx: Context, user: User, url: str
) -> None:
    first = pgbackups.capture(ctx, user, "demo")
    second = pgbackups.capture(ctx, user, "demo")
    pgbackups.delete_backup(ctx, user, "demo", "b002")
    assert not pgbackups.backup_file(ctx.settings, second.backup).exists()
    assert pgbackups.backup_file(ctx.settings, first.backup).exists()
    assert pgbackups.capture(ctx, user, "demo").name == "b003"
    assert [v.name for v in pgbackups.list_backups(ctx, user, "demo")] == ["b003", "b001"]
    with pytest.raises(NotFound):
        pgbackups.get_backup(ctx, user, "demo", "b002")


def test_backups_outlive_their_database(ctx: Context, user: User, url: str) -> None:
    view = pgbackups.capture(ctx, user, "demo")
    destroy_addon(ctx, user, "demo", view.backup.addon_name)
    (kept,) = pgbackups.list_backups(ctx, user, "demo")
    assert (kept.name, kept.backup.addon_id, kept.backup.addon_name) == (
        "b001",
        None,
        view.backup.addon_name,
    )
    create_addon(ctx, user, "demo", "kapal-postgresql")
    pgbackups.restore_backup(ctx, user, "demo", "b001", None)
    assert notes(database_url(ctx, user, "demo")) == ROWS


def test_a_capture_cut_short_by_a_stop_is_failed_at_the_next_start(
    ctx: Context, user: User, url: str
) -> None:
    view = pgbackups.start_capture(ctx, user, "demo", None)
    with pytest.raises(Conflict):  # one capture of a database at a time
        pgbackups.start_capture(ctx, user, "demo", None)
    path = pgbackups.backup_file(ctx.settings, view.backup)
    path.parent.mkdir(parents=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(b"half a dump")
    orphan = path.with_name("no-such-backup.dump")
    orphan.write_bytes(b"left by a crash between forgetting a backup and unlinking it")
    assert pgbackups.recover_backups(ctx) == 1
    (failed,) = pgbackups.list_backups(ctx, user, "demo")
    assert (failed.backup.status, failed.backup.error) == ("failed", pgbackups.INTERRUPTED)
    assert not partial.exists() and not orphan.exists()
    assert pgbackups.capture(ctx, user, "demo").name == "b002"


def test_the_scheduler_captures_once_a_day_at_the_hour(ctx: Context, user: User, url: str) -> None:
    schedule = set_schedule(ctx, user, "demo", None, "02:00 Europe/Berlin")
    assert (schedule.schedule.hour, schedule.schedule.timezone) == (2, "Europe/Berlin")
    clock = [datetime(2026, 11, 27, 0, 30, tzinfo=UTC)]  # 01:30 in Berlin
    scheduler = BackupScheduler(ctx, clock=lambda: clock[0])
    assert scheduler.run_pass() == []
    clock[0] = datetime(2026, 11, 27, 1, 5, tzinfo=UTC)  # 02:05 in Berlin
    (done,) = scheduler.run_pass()
    assert (done.name, done.backup.kind, done.backup.status) == ("a001", "scheduled", "succeeded")
    clock[0] = datetime(2026, 11, 27, 1, 50, tzinfo=UTC)
    assert scheduler.run_pass() == []
    clock[0] = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    assert [v.name for v in scheduler.run_pass()] == ["a002"]
    with ctx.store.session() as s:
        row = s.get(PgBackupSchedule, done.backup.addon_id)
        assert row is not None and row.last_run_at == clock[0]
        assert [b.number for b in s.query(PgBackup).filter_by(kind="scheduled")] == [1, 2]


def test_the_scheduler_keeps_the_newest_seven_daily_backups(
    ctx: Context, user: User, url: str
) -> None:
    set_schedule(ctx, user, "demo", "DATABASE", "23:00 UTC")
    clock = [datetime(2026, 11, 1, 23, 0, tzinfo=UTC)]
    scheduler = BackupScheduler(ctx, clock=lambda: clock[0])
    for day in range(1, 10):
        clock[0] = datetime(2026, 11, day, 23, 10, tzinfo=UTC)
        assert len(scheduler.run_pass()) == 1
    names = [v.name for v in pgbackups.list_backups(ctx, user, "demo")]
    assert names == [f"a{n:03d}" for n in range(9, 2, -1)]
    files = list((ctx.settings.backups_dir).glob("*/*.dump"))
    assert len(files) == 7


def test_the_scheduler_thread_runs_a_pass_at_start_and_stops(
    ctx: Context, user: User, url: str
) -> None:
    set_schedule(ctx, user, "demo", None, "04:00 UTC")
    scheduler = BackupScheduler(
        ctx, clock=lambda: datetime(2026, 11, 27, 4, 30, tzinfo=UTC), interval=3600
    )
    scheduler.start()
    scheduler.stop(timeout=60)
    assert [v.name for v in pgbackups.list_backups(ctx, user, "demo")] == ["a001"]
