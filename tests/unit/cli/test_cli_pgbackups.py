"""`kapal pg:backups*` against the fake API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

from kapal.cli.pgbackups import download_path, human_size

BACKUPS = "/apps/demo/pg-backups"
ATTACHMENTS = "/apps/demo/addon-attachments"
SCHEDULES = "/apps/demo/pg-backup-schedules"


def backup(name: str, status: str = "succeeded", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "num": int(name[1:]),
        "kind": {"b": "capture", "a": "scheduled", "r": "restore"}[name[0]],
        "status": status,
        "app": {"id": "id-demo", "name": "demo"},
        "addon": {"id": "id-pg", "name": "postgresql-flat-3"},
        "size_bytes": 8064 if status == "succeeded" else None,
        "database_bytes": 7_900_000 if status == "succeeded" else None,
        "error": None,
        "created_at": "2026-11-27T11:19:58Z",
        "finished_at": "2026-11-27T11:20:00Z" if status != "running" else None,
        **extra,
    }


def attachment(name: str, addon: str, plan: str = "kapal-postgresql:essential-0") -> dict[str, Any]:
    return {
        "id": f"att-{name}",
        "name": name,
        "app": {"id": "id-demo", "name": "demo"},
        "addon": {"id": f"id-{addon}", "name": addon, "plan": {"name": plan}},
    }


PG = attachment("DATABASE", "postgresql-flat-3")
REPORTS = attachment("REPORTS", "postgresql-round-4")
REDIS = attachment("REDIS", "redis-tall-5", plan="kapal-redis:mini")


def schedule(attachments: list[str], at: str = "02:00 UTC") -> dict[str, Any]:
    return {
        "addon": {"id": "id-pg", "name": "postgresql-flat-3"},
        "attachments": attachments,
        "hour": 2,
        "timezone": at.split()[1],
        "at": at,
        "last_run_at": None,
        "next_run_at": "2026-11-28T02:00:00Z",
        "created_at": "2026-11-27T11:00:00Z",
    }


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, ""),
        (0, "0B"),
        (512, "512B"),
        (8064, "7.88KB"),
        (12_900_000, "12.3MB"),
        (2**31, "2GB"),
    ],
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


def test_download_path_picks_a_free_latest_dump(tmp_path: Path) -> None:
    assert download_path(tmp_path, None) == tmp_path / "latest.dump"
    (tmp_path / "latest.dump").touch()
    (tmp_path / "latest.dump.1").touch()
    assert download_path(tmp_path, None) == tmp_path / "latest.dump.2"
    assert download_path(tmp_path, "x.dump") == tmp_path / "x.dump"


def test_list_shows_backups_and_schedules(kapal: Kapal, fake: FakeApi) -> None:
    failed = backup("b002", "failed", error="pg_dump failed")
    fake.on("GET", BACKUPS, [backup("b003", "running"), failed, backup("b001")])
    fake.on("GET", SCHEDULES, [schedule(["DATABASE"])])
    result = kapal("pg:backups", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "=== Backups",
        "",
        "ID    Created at                 Status                               Size    Database",
        "─" * 95,
        "b003  2026-11-27 11:19:58 +0000  Running  " + " " * 36 + "postgresql-flat-3",
        "b002  2026-11-27 11:19:58 +0000  Failed   " + " " * 36 + "postgresql-flat-3",
        "b001  2026-11-27 11:19:58 +0000  Completed 2026-11-27 11:20:00 +0000  7.88KB  "
        "postgresql-flat-3",
        "",
        "=== Backup Schedules",
        "",
        "DATABASE_URL: daily at 02:00 UTC",
    ]
    assert_token(fake.one("GET", BACKUPS))


def test_list_without_backups(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", BACKUPS, [])
    fake.on("GET", SCHEDULES, [])
    result = kapal("pg:backups", "-a", "demo")
    assert "No backups. Capture one with kapal pg:backups:capture." in result.stdout
    assert "No backup schedules. Set one with kapal pg:backups:schedule." in result.stdout


def test_capture_waits_until_the_backup_is_done(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, [REDIS, PG, REPORTS])
    fake.on("POST", BACKUPS, backup("b004", "running"), status=202)
    answers = iter([backup("b004", "running"), backup("b004")])
    fake.on("GET", f"{BACKUPS}/b004", handler=lambda _: httpx.Response(200, json=next(answers)))
    result = kapal("pg:backups:capture", "REPORTS_URL", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", BACKUPS)) == {"database": "postgresql-round-4"}
    assert result.stderr.splitlines() == [
        "Starting backup of postgresql-round-4... done",
        "",
        "Use Ctrl-C at any time to stop monitoring progress; the backup will continue running.",
        "Use kapal pg:backups:info b004 to check progress.",
        "",
        "Backing up REPORTS to b004... done",
    ]
    assert len(fake.sent("GET", f"{BACKUPS}/b004")) == 2


def test_a_failed_capture_says_why(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, [PG])
    fake.on("POST", BACKUPS, backup("b001", "running"), status=202)
    error = "pg_dump failed (exit status 1): permission denied for table secret"
    fake.on("GET", f"{BACKUPS}/b001", backup("b001", "failed", error=error))
    result = kapal("pg:backups:capture", "-a", "demo")
    assert result.exit_code == 1
    assert "Backing up DATABASE to b001... !" in result.stderr
    assert f" ▸    Backup b001 failed: {error}" in result.stderr


def test_capture_of_an_unknown_database(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, [PG, REDIS])
    result = kapal("pg:backups:capture", "REDIS", "-a", "demo")
    assert result.exit_code == 1
    assert "Unknown database: REDIS. Valid options are: DATABASE_URL" in result.stderr
    assert not fake.sent("POST", BACKUPS)


def test_info(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", f"{BACKUPS}/b001", backup("b001"))
    result = kapal("pg:backups:info", "b001", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "=== Backup b001",
        "",
        "Database:         postgresql-flat-3",
        "Started at:       2026-11-27 11:19:58 +0000",
        "Finished at:      2026-11-27 11:20:00 +0000",
        "Status:           Completed 2026-11-27 11:20:00 +0000",
        "Type:             Manual",
        "Original DB Size: 7.53MB",
        "Backup Size:      7.88KB (100% compression)",
    ]


@pytest.mark.parametrize(
    ("args", "sent"),
    [
        ((), {"backup": None, "database": "postgresql-flat-3"}),
        (("b003",), {"backup": "b003", "database": "postgresql-flat-3"}),
        (("other-app::b003",), {"backup": "other-app::b003", "database": "postgresql-flat-3"}),
        (("REPORTS",), {"backup": None, "database": "postgresql-round-4"}),
        (("b003", "REPORTS_URL"), {"backup": "b003", "database": "postgresql-round-4"}),
    ],
)
def test_restore_arguments(
    kapal: Kapal, fake: FakeApi, args: tuple[str, ...], sent: dict[str, Any]
) -> None:
    fake.on("GET", ATTACHMENTS, [PG, REPORTS])
    done = {
        "backup": backup("b003"),
        "addon": {"id": "x", "name": sent["database"]},
        "safety_copy": backup("r001"),
    }
    fake.on("POST", "/apps/demo/pg-restores", done)
    result = kapal("pg:backups:restore", *args, "--confirm", "demo", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", "/apps/demo/pg-restores")) == sent
    label = sent["backup"] or "its newest backup"
    status = "done, b003" if sent["backup"] is None else "done"
    assert f"Restoring {label} to {sent['database']}... {status}" in result.stderr
    assert "saved as r001; kapal pg:backups:restore r001" in result.stderr


def test_restore_needs_the_apps_name(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, [PG])
    result = kapal("pg:backups:restore", "b001", "-a", "demo")
    assert result.exit_code == 1
    assert "This would overwrite the data of postgresql-flat-3 on ⬢ demo with b001." in (
        result.stderr
    )
    wrong = kapal("pg:backups:restore", "b001", "--confirm", "other", "-a", "demo")
    assert wrong.exit_code == 1
    prompted = kapal("pg:backups:restore", "b001", "-a", "demo", input="nope\n", stdin_tty=True)
    assert prompted.exit_code == 1 and "did not match demo" in prompted.stderr
    assert not fake.sent("POST", "/apps/demo/pg-restores")


def test_download_streams_to_latest_dump(kapal: Kapal, fake: FakeApi, home: Path) -> None:
    fake.on("GET", BACKUPS, [backup("b002", "failed"), backup("b001")])
    content = b"PGDMP" + bytes(range(256)) * 4096
    fake.on(
        "GET",
        f"{BACKUPS}/b001/download",
        handler=lambda _: httpx.Response(
            200, content=content, headers={"Content-Type": "application/octet-stream"}
        ),
    )
    result = kapal("pg:backups:download", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert "Downloading b001 to latest.dump... done, 1MB" in result.stderr
    assert (home / "latest.dump").read_bytes() == content
    assert (home / "latest.dump").stat().st_mode & 0o777 == 0o600
    again = kapal("pg:backups:download", "b001", "-o", "copy.dump", "-a", "demo")
    assert again.exit_code == 0, again.output
    assert (home / "copy.dump").read_bytes() == content
    assert sorted(p.name for p in home.iterdir()) == [".netrc", "copy.dump", "latest.dump"]


def test_download_of_a_missing_backup_leaves_no_file(
    kapal: Kapal, fake: FakeApi, home: Path
) -> None:
    fake.error("GET", f"{BACKUPS}/b009/download", 404, "not_found", "Couldn't find backup b009.")
    result = kapal("pg:backups:download", "b009", "-a", "demo")
    assert result.exit_code == 1
    assert "Couldn't find backup b009." in result.stderr
    assert sorted(p.name for p in home.iterdir()) == [".netrc"]


def test_delete(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("DELETE", f"{BACKUPS}/b001", backup("b001", "deleted"))
    result = kapal("pg:backups:delete", "b001", "--confirm", "demo", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert "Deleting backup b001 of ⬢ demo... done" in result.stderr


def test_schedule_unschedule_and_schedules(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, [PG])
    path = f"{SCHEDULES}/postgresql-flat-3"
    fake.on("PUT", path, schedule(["DATABASE"], "02:00 America/Los_Angeles"))
    result = kapal("pg:backups:schedule", "--at", "02:00 PST", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert body(fake.one("PUT", path)) == {"at": "02:00 PST"}
    assert (
        "Scheduling automatic daily backups of postgresql-flat-3 at 02:00 PST... "
        "done, 02:00 America/Los_Angeles"
    ) in result.stderr

    fake.on("DELETE", path, schedule(["DATABASE"]))
    stopped = kapal("pg:backups:unschedule", "DATABASE", "-a", "demo")
    assert stopped.exit_code == 0, stopped.output
    assert "Stopping automatic backups of postgresql-flat-3... done" in stopped.stderr

    fake.on("GET", SCHEDULES, [])
    none = kapal("pg:backups:schedules", "-a", "demo")
    assert none.stdout == (
        "No backup schedules on ⬢ demo.\nUse kapal pg:backups:schedule to set one up.\n"
    )
    fake.on("GET", SCHEDULES, [schedule(["DATABASE", "OTHER"])])
    listed = kapal("pg:backups:schedules", "-a", "demo")
    assert listed.stdout == (
        "=== Backup Schedules\n\nDATABASE_URL, OTHER_URL: daily at 02:00 UTC\n"
    )


def test_schedule_needs_at(kapal: Kapal) -> None:
    result = kapal("pg:backups:schedule", "-a", "demo")
    assert result.exit_code == 2
    assert "Missing option '--at'" in result.output
