from datetime import UTC

import pytest

from kapal.cli.addons import addons_table, info_lines, pick_attachment, psql_environment
from kapal.cli.errors import CliError
from kapal.client.addons import AddonAttachment
from kapal.client.types import Addon

ADDON: Addon = {
    "id": "a1",
    "name": "postgresql-silent-12345",
    "state": "provisioned",
    "addon_service": {"id": "s", "name": "kapal-postgresql"},
    "plan": {"name": "kapal-postgresql:essential-0"},
    "app": {"id": "p", "name": "demo"},
    "config_vars": ["DATABASE_URL"],
    "created_at": "2026-11-26T13:39:22Z",
}
SECOND: Addon = {
    **ADDON,
    "id": "a2",
    "name": "analytics",
    "state": "provisioning",
    "plan": {"name": "kapal-postgresql:standard-0"},
}


def attachment(name: str, addon: Addon) -> AddonAttachment:
    return {
        "id": f"att-{name}",
        "name": name,
        "app": {"id": "p", "name": "demo"},
        "addon": {"id": addon["id"], "name": addon["name"], "plan": addon["plan"]},
        "config_vars": [f"{name}_URL"],
    }


def test_table_shows_addons_with_their_attachments() -> None:
    lines = addons_table(
        "demo",
        [ADDON, SECOND],
        [attachment("DATABASE", ADDON), attachment("KAPAL_POSTGRESQL_RED", SECOND)],
    )
    assert lines == [
        " Add-on                                      Plan         State",
        " " + "─" * 65,
        " kapal-postgresql (postgresql-silent-12345)  essential-0  created",
        " └─ as DATABASE",
        "",
        " kapal-postgresql (analytics)                standard-0   creating",
        " └─ as KAPAL_POSTGRESQL_RED",
    ]


def test_table_columns_line_up() -> None:
    lines = addons_table("demo", [ADDON, SECOND], [attachment("DATABASE", ADDON)])
    header, rule, first, as_line, blank, second = lines
    assert header.split() == ["Add-on", "Plan", "State"]
    assert first.index("essential-0") == header.index("Plan") == second.index("standard-0")
    assert first.index("created") == header.index("State") == second.index("creating")
    assert set(rule.strip()) == {"─"}
    assert as_line == " └─ as DATABASE"
    assert blank == ""


def test_no_addons() -> None:
    assert addons_table("demo", [], []) == ["No add-ons for app demo."]


def test_info_lines() -> None:
    lines = info_lines(ADDON, [attachment("DATABASE", ADDON)], UTC)
    assert lines == [
        "Attachments:  demo::DATABASE",
        "Installed at: 2026/11/26 13:39:22 +0000",
        "Owning app:   demo",
        "Plan:         kapal-postgresql:essential-0",
        "Price:        free",
        "State:        created",
    ]


@pytest.mark.parametrize("wanted", [None, "DATABASE", "DATABASE_URL", "postgresql-silent-12345"])
def test_pick_attachment_by_any_of_its_names(wanted: str | None) -> None:
    attachments = [attachment("KAPAL_POSTGRESQL_RED", SECOND), attachment("DATABASE", ADDON)]
    assert pick_attachment("demo", attachments, wanted)["name"] == "DATABASE"


def test_pick_attachment_lists_valid_options() -> None:
    with pytest.raises(CliError, match="Valid options are: DATABASE_URL"):
        pick_attachment("demo", [attachment("DATABASE", ADDON)], "NOPE")


def test_pick_attachment_without_databases() -> None:
    with pytest.raises(CliError, match="⬢ demo has no databases"):
        pick_attachment("demo", [], None)


def test_psql_environment_keeps_the_password_off_argv() -> None:
    env = psql_environment("postgres://u%40x:p%2Fw@localhost:15432/db", {"PATH": "/usr/bin"})
    assert env == {
        "PATH": "/usr/bin",
        "PGHOST": "localhost",
        "PGPORT": "15432",
        "PGUSER": "u@x",
        "PGPASSWORD": "p/w",
        "PGDATABASE": "db",
        "PGSSLMODE": "prefer",
    }


def test_psql_environment_requires_tls_elsewhere_unless_the_user_says() -> None:
    assert psql_environment("postgres://u:p@db.example:5432/d", {})["PGSSLMODE"] == "require"
    user_set = psql_environment("postgres://u:p@db.example:5432/d", {"PGSSLMODE": "disable"})
    assert user_set["PGSSLMODE"] == "disable"


def test_psql_environment_rejects_other_urls() -> None:
    with pytest.raises(CliError, match="postgres://"):
        psql_environment("mysql://u:p@localhost/d", {})
