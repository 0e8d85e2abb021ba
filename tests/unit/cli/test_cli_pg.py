"""`kapal pg:info`, `pg:ps`, `pg:kill`, `pg:credentials:rotate`, `pg:reset` and `pg:promote`
against the fake API: what they send, what they print, and their confirmations."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

from kapal.cli.pg import running_for

BASE = "/apps/demo/pg-databases"
ATTACHMENTS = "/apps/demo/addon-attachments"
PINK = "postgresql-pink-1"
BLUE = "postgresql-blue-2"


def database(name: str, config_vars: list[str], rows: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "addon": {"id": f"id-{name}", "name": name},
        "app": {"id": "id-demo", "name": "demo"},
        "config_vars": config_vars,
        "status": "available",
        "info": [{"name": key, "values": [value]} for key, value in rows],
    }


def attachment(name: str, addon: str) -> dict[str, Any]:
    return {
        "id": f"att-{name}",
        "name": name,
        "app": {"id": "id-demo", "name": "demo"},
        "addon": {"id": f"id-{addon}", "name": addon, "plan": {"name": "kapal-postgresql:x"}},
    }


ATTACHED = [attachment("DATABASE", PINK), attachment("KAPAL_POSTGRESQL_BLUE", BLUE)]


def test_info_shows_every_database_with_its_config_vars(kapal: Kapal, fake: FakeApi) -> None:
    fake.on(
        "GET",
        BASE,
        [
            database(
                PINK,
                ["DATABASE_URL", "KAPAL_POSTGRESQL_PINK_URL"],
                [("Plan", "essential-0"), ("Data Size", "7.9 MB / 1 GB (0.77%)")],
            ),
            database(BLUE, ["KAPAL_POSTGRESQL_BLUE_URL"], [("Plan", "standard-0")]),
        ],
    )
    result = kapal("pg:info", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== DATABASE_URL, KAPAL_POSTGRESQL_PINK_URL\n\n"
        "Plan:      essential-0\n"
        "Data Size: 7.9 MB / 1 GB (0.77%)\n"
        "\n"
        "=== KAPAL_POSTGRESQL_BLUE_URL\n\n"
        "Plan: standard-0\n"
    )
    assert_token(fake.one("GET", BASE))


def test_info_of_one_database_and_the_pg_alias(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", f"{BASE}/KAPAL_POSTGRESQL_BLUE_URL", database(BLUE, ["X_URL"], [("P", "v")]))
    fake.on("GET", BASE, [database(PINK, ["DATABASE_URL"], [("Plan", "essential-0")])])
    one = kapal("pg:info", "KAPAL_POSTGRESQL_BLUE_URL", "-a", "demo")
    assert one.stdout == "=== X_URL\n\nP: v\n"
    alias = kapal("pg", "-a", "demo")
    assert alias.exit_code == 0 and alias.stdout.startswith("=== DATABASE_URL\n")


def test_info_without_databases_says_so(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", BASE, [])
    result = kapal("pg:info", "-a", "demo")
    assert result.exit_code == 1
    assert "⬢ demo has no Postgres databases." in result.stderr


def test_ps_lists_queries_on_one_line_each(kapal: Kapal, fake: FakeApi) -> None:
    sessions = [
        {
            "pid": 4242,
            "state": "active",
            "query_start": "2026-11-26T13:39:00Z",
            "running_for": 65.4,
            "waiting": False,
            "query": "SELECT pg_sleep(60)\n  FROM x",
        },
        {
            "pid": 77,
            "state": "idle in transaction",
            "query_start": None,
            "running_for": None,
            "waiting": True,
            "query": "UPDATE t SET x = 1",
        },
    ]
    fake.on("GET", f"{BASE}/DATABASE/sessions", sessions)
    result = kapal("pg:ps", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "PID   State                Running for  Waiting  Query",
        "4242  active               00:01:05     no       SELECT pg_sleep(60) FROM x",
        "77    idle in transaction               yes      UPDATE t SET x = 1",
    ]
    assert fake.one("GET", f"{BASE}/DATABASE/sessions").url.params.get("all") is None


def test_ps_verbose_asks_for_idle_connections_too(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", f"{BASE}/{PINK}/sessions", [])
    quiet = kapal("pg:ps", PINK, "-a", "demo")
    assert quiet.stdout == f"No active connections to {PINK}.\n"
    verbose = kapal("pg:ps", PINK, "--verbose", "-a", "demo")
    assert verbose.stdout == f"No connections to {PINK}.\n"
    assert fake.sent("GET", f"{BASE}/{PINK}/sessions")[1].url.params["all"] == "true"


def test_kill_cancels_or_with_force_terminates(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", f"{BASE}/DATABASE/actions/kill", {})
    fake.on("POST", f"{BASE}/KAPAL_POSTGRESQL_BLUE/actions/kill", {})
    cancel = kapal("pg:kill", "4242", "-a", "demo")
    assert cancel.exit_code == 0, cancel.output
    assert "Cancelling the query of connection 4242 on ⬢ demo... done" in cancel.stderr
    assert body(fake.one("POST", f"{BASE}/DATABASE/actions/kill")) == {"pid": 4242, "force": False}
    force = kapal("pg:kill", "77", "KAPAL_POSTGRESQL_BLUE", "--force", "-a", "demo")
    assert "Terminating connection 77 on ⬢ demo... done" in force.stderr
    sent = fake.one("POST", f"{BASE}/KAPAL_POSTGRESQL_BLUE/actions/kill")
    assert body(sent) == {"pid": 77, "force": True}


def test_kill_reports_the_apis_refusal_and_needs_a_number(kapal: Kapal, fake: FakeApi) -> None:
    message = f"Process 1 is not a connection to {PINK}."
    fake.error("POST", f"{BASE}/DATABASE/actions/kill", 404, "not_found", message)
    refused = kapal("pg:kill", "1", "-a", "demo")
    assert refused.exit_code == 1
    assert message in refused.stderr
    assert kapal("pg:kill", "abc", "-a", "demo").exit_code == 2
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("command", "action"),
    [("pg:credentials:rotate", "rotate-credentials"), ("pg:reset", "reset")],
)
def test_destructive_commands_need_the_apps_name(
    kapal: Kapal, fake: FakeApi, command: str, action: str
) -> None:
    fake.on("GET", ATTACHMENTS, ATTACHED)
    refused = kapal(command, "-a", "demo")
    assert refused.exit_code == 1
    assert "Re-run with --confirm demo to proceed." in refused.stderr
    assert PINK in refused.stderr
    wrong = kapal(command, "-a", "demo", "--confirm", "other")
    assert wrong.exit_code == 1
    assert "Confirmation 'other' did not match demo. Nothing was changed." in wrong.stderr
    prompted = kapal(command, "-a", "demo", input="nope\n", stdin_tty=True)
    assert prompted.exit_code == 1
    assert fake.sent("POST", f"{BASE}/{PINK}/actions/{action}") == []


def test_rotate_names_the_addon_and_the_releases(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, ATTACHED)
    fake.on(
        "POST",
        f"{BASE}/{BLUE}/actions/rotate-credentials",
        {
            **database(BLUE, ["KAPAL_POSTGRESQL_BLUE_URL"], []),
            "releases": [
                {"app": {"id": "id-demo", "name": "demo"}, "version": 7},
                {"app": {"id": "id-other", "name": "other"}, "version": 3},
            ],
        },
    )
    result = kapal(
        "pg:credentials:rotate", "KAPAL_POSTGRESQL_BLUE_URL", "-a", "demo", "--confirm", "demo"
    )
    assert result.exit_code == 0, result.output
    assert f"Rotating all credentials on {BLUE}... done" in result.stderr
    assert result.stdout == (
        "Released the new URL to ⬢ demo as v7.\nReleased the new URL to ⬢ other as v3.\n"
    )


def test_reset_after_typing_the_apps_name(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, ATTACHED)
    fake.on("POST", f"{BASE}/{PINK}/actions/reset", database(PINK, ["DATABASE_URL"], []))
    result = kapal("pg:reset", "-a", "demo", input="demo\n", stdin_tty=True)
    assert result.exit_code == 0, result.output
    assert f"WARNING: This will destroy all data in {PINK} on ⬢ demo." in result.stderr
    assert f"Resetting {PINK}... done" in result.stderr


def test_promote_says_where_the_old_database_stays(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, ATTACHED)
    fake.on(
        "POST",
        f"{BASE}/{BLUE}/actions/promote",
        {
            **database(BLUE, ["DATABASE_URL", "KAPAL_POSTGRESQL_BLUE_URL"], []),
            "release": {"id": "r9", "version": 9},
            "previous": {"name": PINK, "config_var": "KAPAL_POSTGRESQL_RED_URL"},
        },
    )
    result = kapal("pg:promote", "KAPAL_POSTGRESQL_BLUE", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert f"Promoting {BLUE} to DATABASE_URL on ⬢ demo... done, v9" in result.stderr
    assert result.stdout == f"{PINK} stays reachable as KAPAL_POSTGRESQL_RED_URL.\n"


def test_promote_of_an_unknown_database_sends_nothing(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ATTACHMENTS, ATTACHED)
    result = kapal("pg:promote", "NOPE", "-a", "demo")
    assert result.exit_code == 1
    assert "Unknown database: NOPE. Valid options are: DATABASE_URL" in result.stderr
    assert [r.method for r in fake.requests] == ["GET"]
    assert kapal("pg:promote", "-a", "demo").exit_code == 2  # DATABASE is required


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, ""), (0.4, "00:00:00"), (65.4, "00:01:05"), (90061, "25:01:01")]
)
def test_running_for(seconds: float | None, text: str) -> None:
    assert running_for(seconds) == text
