"""`kapal addons*` and `pg:psql` against the real API, PostgreSQL and psql."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.integration.addons.kapal_cli import Run, kapal_cli

from kapal.services.apps import create_app
from kapal.services.context import Context
from kapal.store.models import User

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("drop_addons")]


@pytest.fixture
def kapal(api_url: str, token: str, ctx: Context, user: User, tmp_path: Path) -> Run:
    create_app(ctx, user, "cli-app")
    return kapal_cli(api_url, token, tmp_path / "home")


def test_create_list_info_destroy(kapal: Run) -> None:
    assert kapal("addons", "-a", "cli-app").stdout == "No add-ons for app cli-app.\n"

    created = kapal("addons:create", "kapal-postgresql:essential-0", "-a", "cli-app")
    assert created.exit_code == 0, created.output
    assert "Creating kapal-postgresql:essential-0 on ⬢ cli-app... done" in created.stderr
    first_line = created.stdout.splitlines()[0]
    assert first_line.startswith("Created postgresql-") and first_line.endswith(" as DATABASE_URL")
    name = first_line.split()[1]

    second = kapal(
        "addons:add", "kapal-postgresql", "--as", "REPORTS", "--name", "reports", "-a", "cli-app"
    )
    assert second.stdout.startswith("Created reports as REPORTS_URL"), second.output

    listed = kapal("addons", "-a", "cli-app").stdout.splitlines()
    assert listed[0].split() == ["Add-on", "Plan", "State"]
    assert listed[2].split() == ["kapal-postgresql", f"({name})", "essential-0", "created"]
    assert listed[3] == " └─ as DATABASE"
    assert listed[5].split() == ["kapal-postgresql", "(reports)", "essential-0", "created"]
    assert listed[6] == " └─ as REPORTS"

    info = kapal("addons:info", name, "-a", "cli-app").stdout
    assert info.startswith(f"=== {name}\n")
    assert "Attachments:  cli-app::DATABASE" in info
    assert "Plan:         kapal-postgresql:essential-0" in info
    assert "State:        created" in info

    refused = kapal("addons:destroy", name, "-a", "cli-app")
    assert refused.exit_code == 1
    assert "--confirm cli-app" in refused.stderr
    wrong = kapal("addons:destroy", name, "-a", "cli-app", "--confirm", "other-app")
    assert wrong.exit_code == 1
    assert len(kapal("addons", "-a", "cli-app").stdout.splitlines()) == 7  # still there

    destroyed = kapal("addons:destroy", name, "-a", "cli-app", "--confirm", "cli-app")
    assert destroyed.exit_code == 0, destroyed.output
    assert f"Destroying {name} on ⬢ cli-app... done" in destroyed.stderr
    assert name not in kapal("addons", "-a", "cli-app").stdout


def test_unknown_plan_is_reported(kapal: Run) -> None:
    result = kapal("addons:create", "kapal-postgresql:galactic", "-a", "cli-app")
    assert result.exit_code == 1
    assert "Known plans: kapal-postgresql:essential-0" in result.stderr


def test_pg_psql_runs_a_command_and_returns_its_status(
    kapal: Run, capfd: pytest.CaptureFixture[str]
) -> None:
    assert shutil.which("psql"), "psql (postgresql-client) must be installed for this test"
    name = kapal("addons:create", "kapal-postgresql", "-a", "cli-app").stdout.split()[1]
    capfd.readouterr()

    ok = kapal("pg:psql", "-a", "cli-app", "-c", "select 6 * 7 as answer")
    assert ok.exit_code == 0, ok.output
    assert f"--> Connecting to {name}" in ok.stderr
    assert "42" in capfd.readouterr().out  # psql writes to the real stdout

    failed = kapal("psql", "DATABASE_URL", "-a", "cli-app", "-c", "select * from no_such_table")
    assert failed.exit_code == 1  # psql's own status for a failed command
    assert "no_such_table" in capfd.readouterr().err

    unknown = kapal("pg:psql", "NOPE", "-a", "cli-app", "-c", "select 1")
    assert unknown.exit_code == 1
    assert "Unknown database: NOPE. Valid options are: DATABASE_URL" in unknown.stderr

    no_psql = kapal("pg:psql", "-a", "cli-app", "-c", "select 1", path="/nonexistent")
    assert no_psql.exit_code == 1
    assert "psql command could not be located" in no_psql.stderr


def test_pg_psql_without_a_database(kapal: Run) -> None:
    result = kapal("pg:psql", "-a", "cli-app", "-c", "select 1")
    assert result.exit_code == 1
    assert "⬢ cli-app has no databases." in result.stderr
