"""`kapal mysql:cli` and `mysql:info` against the fake API and a stand-in `mysql` program."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal

from kapal.cli.mysql import info_rows

PASSWORD = "s3cr%t pw"
MYSQL_URL = "mysql://kapal_mysql_a:s3cr%25t%20pw@localhost:3306/kapal_mysql_a"
REPORTS_URL = "mysql://kapal_reports:other@db.internal:3307/kapal_reports"


def attachment(name: str, addon: str, plan: str) -> dict[str, Any]:
    return {
        "id": f"att-{name}",
        "name": name,
        "app": {"id": "id-demo", "name": "demo"},
        "addon": {"id": f"id-{addon}", "name": addon, "plan": {"name": plan}},
        "config_vars": [f"{name}_URL"],
    }


MYSQL = attachment("MYSQL", "mysql-silent-12345", "kapal-mysql:mini")
REPORTS = attachment("REPORTS", "reports", "kapal-mysql:standard-0")
POSTGRES = attachment("DATABASE", "postgresql-x", "kapal-postgresql:essential-0")


@pytest.fixture
def mysql_bin(tmp_path: Path) -> Path:
    """A `mysql` that records its arguments and MYSQL_PWD, prints $FAKE_OUT, exits $FAKE_STATUS."""
    folder = tmp_path / "bin"
    folder.mkdir()
    program = folder / "mysql"
    program.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do echo "$a"; done > {tmp_path}/args\n'
        f'printf %s "$MYSQL_PWD" > {tmp_path}/pwd\n'
        'printf "$FAKE_OUT"\n'
        'if [ -n "$FAKE_ERR" ]; then echo "$FAKE_ERR" >&2; fi\n'
        'exit "${FAKE_STATUS:-0}"\n'
    )
    program.chmod(0o755)
    return folder


def serve(fake: FakeApi, *attachments: dict[str, Any]) -> None:
    fake.on("GET", "/apps/demo/addon-attachments", list(attachments))
    config = {"MYSQL_URL": MYSQL_URL, "REPORTS_URL": REPORTS_URL, "DATABASE_URL": "postgres://x"}
    fake.on("GET", "/apps/demo/config-vars", config)


def path_env(folder: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{folder}:{os.environ['PATH']}", **extra}


def test_cli_runs_sql_with_the_password_in_the_environment_only(
    kapal: Kapal, fake: FakeApi, mysql_bin: Path, tmp_path: Path
) -> None:
    serve(fake, POSTGRES, MYSQL)
    result = kapal("mysql:cli", "-a", "demo", "-e", "SELECT 1", env=path_env(mysql_bin))
    assert result.exit_code == 0, result.output
    assert "--> Connecting to mysql-silent-12345" in result.stderr
    args = (tmp_path / "args").read_text().splitlines()
    assert args == [
        "--protocol=TCP",
        "--host=localhost",
        "--port=3306",
        "--user=kapal_mysql_a",
        "--database=kapal_mysql_a",
        "--execute",
        "SELECT 1",
    ]
    assert (tmp_path / "pwd").read_text() == PASSWORD
    assert not [a for a in args if "s3cr" in a]


def test_cli_returns_the_clients_status_and_sets_a_prompt(
    kapal: Kapal, fake: FakeApi, mysql_bin: Path, tmp_path: Path
) -> None:
    serve(fake, MYSQL, REPORTS)
    result = kapal(
        "mysql:cli", "REPORTS_URL", "-a", "demo", env=path_env(mysql_bin, FAKE_STATUS="3")
    )
    assert result.exit_code == 3
    args = (tmp_path / "args").read_text().splitlines()
    assert args[1:3] == ["--host=db.internal", "--port=3307"]
    assert args[-1] == "--prompt=demo::REPORTS> "


@pytest.mark.parametrize(
    ("attachments", "wanted", "chosen"),
    [
        ([MYSQL, REPORTS], None, "kapal_mysql_a"),  # MYSQL first
        ([REPORTS], None, "kapal_reports"),  # the only one, whatever its name
        ([MYSQL, REPORTS], "reports", "kapal_reports"),  # by add-on name
        ([MYSQL, REPORTS], "REPORTS", "kapal_reports"),
    ],
)
def test_which_database(
    kapal: Kapal,
    fake: FakeApi,
    mysql_bin: Path,
    tmp_path: Path,
    attachments: list[dict[str, Any]],
    wanted: str | None,
    chosen: str,
) -> None:
    serve(fake, POSTGRES, *attachments)
    args = ["mysql:cli", *([wanted] if wanted else []), "-a", "demo", "-e", "SELECT 1"]
    result = kapal(*args, env=path_env(mysql_bin))
    assert result.exit_code == 0, result.output
    assert f"--user={chosen}" in (tmp_path / "args").read_text().splitlines()


def test_unknown_or_missing_databases_and_client(
    kapal: Kapal, fake: FakeApi, mysql_bin: Path
) -> None:
    serve(fake, POSTGRES, MYSQL, REPORTS)
    unknown = kapal("mysql:cli", "DATABASE", "-a", "demo", env=path_env(mysql_bin))
    assert unknown.exit_code == 1
    assert "Unknown database: DATABASE. Valid options are: MYSQL_URL, REPORTS_URL" in unknown.stderr

    serve(fake, MYSQL)
    no_client = kapal("mysql:info", "-a", "demo", env={"PATH": "/nonexistent"})
    assert no_client.exit_code == 1
    assert "mysql command could not be located" in no_client.stderr

    serve(fake, POSTGRES)
    none = kapal("mysql:info", "-a", "demo", env=path_env(mysql_bin))
    assert none.exit_code == 1
    assert "⬢ demo has no MySQL databases." in none.stderr


def test_a_url_that_is_not_mysql_is_refused(kapal: Kapal, fake: FakeApi, mysql_bin: Path) -> None:
    fake.on("GET", "/apps/demo/addon-attachments", [MYSQL])
    fake.on("GET", "/apps/demo/config-vars", {"MYSQL_URL": "postgres://u:p@h/d"})
    result = kapal("mysql:cli", "-a", "demo", env=path_env(mysql_bin))
    assert result.exit_code == 1
    assert "not a mysql:// URL" in result.stderr


def test_info_shows_plan_connections_size_and_version(
    kapal: Kapal, fake: FakeApi, mysql_bin: Path, tmp_path: Path
) -> None:
    serve(fake, MYSQL)
    row = r"10.11.19-MariaDB\t1\t10\t2\t49152\n"
    result = kapal("mysql:info", "-a", "demo", env=path_env(mysql_bin, FAKE_OUT=row))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "=== MYSQL_URL",
        "",
        "Plan:          mini",
        "Status:        Available",
        "Connections:   1/10",
        "MySQL Version: 10.11.19-MariaDB",
        "Data Size:     48 KB / 1 GB",
        "Tables:        2",
        "Add-on:        mysql-silent-12345",
    ]
    args = (tmp_path / "args").read_text().splitlines()
    assert args[5:8] == ["--batch", "--skip-column-names", "--execute"]
    assert (tmp_path / "pwd").read_text() == PASSWORD


def test_info_reports_the_clients_error(kapal: Kapal, fake: FakeApi, mysql_bin: Path) -> None:
    serve(fake, MYSQL)
    error = "ERROR 1045 (28000): Access denied for user 'kapal_mysql_a'@'localhost'"
    result = kapal(
        "mysql:info", "-a", "demo", env=path_env(mysql_bin, FAKE_ERR=error, FAKE_STATUS="1")
    )
    assert result.exit_code == 1
    assert error in result.stderr
    assert "s3cr" not in result.output


def test_info_rows_refuse_an_unexpected_answer() -> None:
    with pytest.raises(Exception, match="Unexpected answer from the mysql client"):
        info_rows(MYSQL, "garbage\n")  # type: ignore[arg-type]
