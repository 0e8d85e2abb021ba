"""pg:backups over HTTP and through the `kapal` CLI, against the real API and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from click.testing import CliRunner, Result

from kapal.cli.context import CliEnv
from kapal.cli.main import build_cli
from kapal.services import pgbackups
from kapal.services.addons import create_addon
from kapal.services.apps import create_app
from kapal.services.auth import login, signup
from kapal.services.config import get_config
from kapal.services.context import Context
from kapal.store.models import PgBackup, User

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("drop_addons")]

HEROKU_ACCEPT = "application/vnd.heroku+json; version=3"


def client(api_url: str, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}", "Accept": HEROKU_ACCEPT}
    return httpx.Client(base_url=api_url, headers=headers, timeout=60)


@pytest.fixture
def url(ctx: Context, user: User) -> str:
    create_app(ctx, user, "api-app")
    create_addon(ctx, user, "api-app", "kapal-postgresql")
    url = get_config(ctx, user, "api-app")["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 500) g")
    return url


@pytest.fixture
def http(api_url: str, token: str, url: str) -> Iterator[httpx.Client]:
    with client(api_url, token) as c:
        yield c


def finished(http: httpx.Client, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        backup: dict[str, Any] = http.get(path).json()
        if backup["status"] != "running" or time.monotonic() > deadline:
            return backup
        time.sleep(0.05)


def test_capture_answers_at_once_then_download_streams_the_file(
    http: httpx.Client, ctx: Context
) -> None:
    started = http.post("/apps/api-app/pg-backups", json={})
    assert started.status_code == 202, started.text
    assert (started.json()["name"], started.json()["status"]) == ("b001", "running")
    backup = finished(http, "/apps/api-app/pg-backups/b001")
    assert backup["status"] == "succeeded", backup
    assert backup["kind"] == "capture"
    assert backup["addon"]["name"].startswith("postgresql-")
    assert backup["size_bytes"] > 0 and backup["finished_at"].endswith("Z")
    assert [b["name"] for b in http.get("/apps/api-app/pg-backups").json()] == ["b001"]

    with http.stream("GET", "/apps/api-app/pg-backups/b001/download") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert 'filename="b001.dump"' in response.headers["content-disposition"]
        body = response.read()
    with ctx.store.session() as s:
        row = s.get(PgBackup, backup["id"])
        assert row is not None
        path = pgbackups.backup_file(ctx.settings, row)
    assert body == path.read_bytes()
    assert body.startswith(b"PGDMP")  # pg_dump's custom format


def test_restore_and_schedules_over_http(http: httpx.Client, url: str) -> None:
    http.post("/apps/api-app/pg-backups", json={})
    assert finished(http, "/apps/api-app/pg-backups/b001")["status"] == "succeeded"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM items")
    done = http.post("/apps/api-app/pg-restores", json={"backup": "b001"})
    assert done.status_code == 200, done.text
    assert (done.json()["backup"]["name"], done.json()["safety_copy"]["name"]) == ("b001", "r001")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (500,)

    put = http.put("/apps/api-app/pg-backup-schedules/DATABASE", json={"at": "02:00 PST"})
    assert put.status_code == 200, put.text
    schedule = put.json()
    assert (schedule["at"], schedule["attachments"]) == ("02:00 America/Los_Angeles", ["DATABASE"])
    assert schedule["next_run_at"].endswith("Z")
    assert http.get("/apps/api-app/pg-backup-schedules").json() == [schedule]
    bad = http.put("/apps/api-app/pg-backup-schedules/DATABASE", json={"at": "02:30 UTC"})
    assert (bad.status_code, bad.json()["id"]) == (422, "invalid_params")
    assert http.delete("/apps/api-app/pg-backup-schedules/DATABASE").status_code == 200
    assert http.get("/apps/api-app/pg-backup-schedules").json() == []
    gone = http.delete("/apps/api-app/pg-backup-schedules/DATABASE")
    assert gone.status_code == 404


def test_another_users_backups_are_out_of_reach(
    http: httpx.Client, api_url: str, ctx: Context
) -> None:
    http.post("/apps/api-app/pg-backups")  # no body: DATABASE
    assert finished(http, "/apps/api-app/pg-backups/b001")["status"] == "succeeded"
    signup(ctx, "other@example.com", "password123")
    other = login(ctx, "other@example.com", "password123")
    with client(api_url, other) as theirs:
        theirs.post("/apps", json={"name": "their-app"})
        theirs.post("/apps/their-app/addons", json={"plan": "kapal-postgresql"})
        for method, path, body in [
            ("GET", "/apps/api-app/pg-backups", None),
            ("GET", "/apps/api-app/pg-backups/b001", None),
            ("GET", "/apps/api-app/pg-backups/b001/download", None),
            ("DELETE", "/apps/api-app/pg-backups/b001", None),
            ("POST", "/apps/api-app/pg-backups", {}),
            ("POST", "/apps/api-app/pg-restores", {"backup": "b001"}),
            ("POST", "/apps/their-app/pg-restores", {"backup": "api-app::b001"}),
            ("GET", "/apps/api-app/pg-backup-schedules", None),
            ("PUT", "/apps/api-app/pg-backup-schedules/DATABASE", {"at": "02:00 UTC"}),
        ]:
            response = theirs.request(method, path, json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["id"] == "forbidden"
    assert http.get("/apps/api-app/pg-backups/b001").json()["status"] == "succeeded"


Run = Callable[..., Result]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def kapal(api_url: str, token: str, url: str, home: Path) -> Run:
    def run(*args: str) -> Result:
        env = CliEnv(
            environ={
                "PATH": os.environ["PATH"],
                "HOME": str(home),
                "KAPAL_API_URL": api_url,
                "KAPAL_API_KEY": token,
            },
            cwd=home,
            tz=UTC,
            home=home,
        )
        return CliRunner().invoke(build_cli(), [*args, "-a", "api-app"], obj=env)

    return run


def test_the_cli_captures_lists_downloads_and_restores(kapal: Run, url: str, home: Path) -> None:
    captured = kapal("pg:backups:capture")
    assert captured.exit_code == 0, captured.output
    assert "Starting backup of postgresql-" in captured.stderr
    assert "Backing up DATABASE to b001... done" in captured.stderr

    listed = kapal("pg:backups")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0] == "=== Backups"
    assert lines[2].split() == ["ID", "Created", "at", "Status", "Size", "Database"]
    assert lines[4].startswith("b001  ") and " Completed 20" in lines[4]
    assert "No backup schedules." in listed.stdout

    downloaded = kapal("pg:backups:download")
    assert downloaded.exit_code == 0, downloaded.output
    dump = home / "latest.dump"
    assert dump.read_bytes().startswith(b"PGDMP")
    assert dump.stat().st_mode & 0o777 == 0o600
    assert kapal("pg:backups:download", "b001").exit_code == 0
    assert (home / "latest.dump.1").read_bytes() == dump.read_bytes()

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE items")
    refused = kapal("pg:backups:restore", "b001")
    assert refused.exit_code == 1
    assert "Re-run with --confirm api-app" in refused.stderr
    restored = kapal("pg:backups:restore", "b001", "DATABASE", "--confirm", "api-app")
    assert restored.exit_code == 0, restored.output
    assert "Restoring b001 to postgresql-" in restored.stderr
    assert "saved as r001" in restored.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (500,)

    scheduled = kapal("pg:backups:schedule", "--at", "02:00 Europe/Berlin")
    assert scheduled.exit_code == 0, scheduled.output
    assert kapal("pg:backups:schedules").stdout.splitlines()[-1] == (
        "DATABASE_URL: daily at 02:00 Europe/Berlin"
    )
    deleted = kapal("pg:backups:delete", "b001", "--confirm", "api-app")
    assert deleted.exit_code == 0, deleted.output
    assert [line.split()[0] for line in kapal("pg:backups").stdout.splitlines()[4:5]] == ["r001"]
