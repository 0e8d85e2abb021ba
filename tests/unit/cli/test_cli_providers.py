"""`kapal addons:providers*`, `addons:upgrade`/`downgrade` and `addons:create --config`
against the fake API."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

from kapal.cli.providers import parse_plan_option

PROVIDER = {
    "id": "acme-search",
    "name": "Acme Search",
    "base_url": "https://acme.example.com/heroku/resources",
    "plans": [{"name": "test", "description": "For trying it"}, {"name": "pro", "description": ""}],
    "config_vars": ["ACME_URL"],
    "created_at": "2026-11-26T13:00:00Z",
    "updated_at": "2026-11-26T13:00:00Z",
}
ADD = [
    "addons:providers:add",
    "acme-search",
    "--base-url",
    "https://acme.example.com/heroku/resources",
    "--plan",
    "test:For trying it",
    "--plan",
    "pro",
    "--config-var",
    "ACME_URL",
    "--name",
    "Acme Search",
]


def addon(plan: str = "acme-search:test", **extra: Any) -> dict[str, Any]:
    return {
        "id": "a1",
        "name": "acme-search-silent-12345",
        "addon_service": {"id": "s", "name": "acme-search"},
        "plan": {"name": plan},
        "config_vars": ["ACME_URL"],
        "state": "provisioned",
        **extra,
    }


def test_providers_are_a_table(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/addon-providers", [PROVIDER])
    result = kapal("addons:providers")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "Name", "Plans", "Config", "vars", "Base", "URL"]
    assert lines[2].split() == [
        "acme-search",
        "Acme",
        "Search",
        "test,",
        "pro",
        "ACME_URL",
        "https://acme.example.com/heroku/resources",
    ]
    assert_token(fake.one("GET", "/addon-providers"))


def test_no_providers_says_how_to_add_one(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/addon-providers", [])
    result = kapal("addons:providers")
    assert "kapal addons:providers:add" in result.stdout


def test_non_operators_see_the_apis_message(kapal: Kapal, fake: FakeApi) -> None:
    fake.error(
        "GET", "/addon-providers", 403, "forbidden", "Only operators may manage add-on providers"
    )
    result = kapal("addons:providers")
    assert result.exit_code == 1
    assert "Only operators may manage add-on providers" in result.output


def test_add_reads_the_password_from_stdin(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/addon-providers", PROVIDER, status=201)
    result = kapal(*ADD, "--password-stdin", input="pass-from-stdin\n")
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", "/addon-providers")) == {
        "id": "acme-search",
        "base_url": "https://acme.example.com/heroku/resources",
        "password": "pass-from-stdin",
        "plans": [
            {"name": "test", "description": "For trying it"},
            {"name": "pro", "description": ""},
        ],
        "config_vars": ["ACME_URL"],
        "name": "Acme Search",
    }
    assert "Registering add-on provider acme-search... done" in result.stderr
    assert "kapal addons:create acme-search:test" in result.stdout
    assert "pass-from-stdin" not in result.output


def test_add_prompts_for_the_password_on_a_terminal(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/addon-providers", PROVIDER, status=201)
    result = kapal(*ADD, input="typed-password\n", stdin_tty=True)
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", "/addon-providers"))["password"] == "typed-password"
    assert "typed-password" not in result.output  # hidden input


def test_add_takes_password_but_not_with_stdin(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/addon-providers", PROVIDER, status=201)
    assert kapal(*ADD, "--password", "on-the-command-line").exit_code == 0
    assert body(fake.one("POST", "/addon-providers"))["password"] == "on-the-command-line"
    both = kapal(*ADD, "--password", "x", "--password-stdin", input="y\n")
    assert both.exit_code == 1
    assert "not both" in both.output


def test_add_without_a_way_to_get_the_password_says_how(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal(*ADD)
    assert result.exit_code == 1
    assert "--password-stdin" in result.output
    assert fake.requests == []


def test_add_needs_a_base_url_and_a_plan(kapal: Kapal, fake: FakeApi) -> None:
    assert "--base-url" in kapal("addons:providers:add", "acme", "--password", "x").output
    result = kapal("addons:providers:add", "acme", "--base-url", "https://a", "--password", "x")
    assert "at least one --plan" in result.output
    assert fake.requests == []


def test_add_shows_the_apis_validation_message(kapal: Kapal, fake: FakeApi) -> None:
    fake.error(
        "POST", "/addon-providers", 422, "invalid_params", "base_url must be an https:// URL"
    )
    result = kapal(*ADD, "--password", "password-1")
    assert result.exit_code == 1
    assert "base_url must be an https:// URL" in result.output


def test_the_help_warns_about_password_on_the_command_line(kapal: Kapal) -> None:
    result = kapal("addons:providers:add", "--help")
    assert "process list" in result.output
    assert "--password-stdin" in result.output


@pytest.mark.parametrize(
    ("text", "plan"),
    [
        ("test", {"name": "test", "description": ""}),
        ("test:For trying: it", {"name": "test", "description": "For trying: it"}),
    ],
)
def test_plan_options(text: str, plan: dict[str, str]) -> None:
    assert parse_plan_option(text) == plan


def test_update_sends_only_what_changes(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("PATCH", "/addon-providers/acme-search", PROVIDER)
    result = kapal(
        "addons:providers:update",
        "acme-search",
        "--password-stdin",
        "--plan",
        "gold",
        input="new-pass\n",
    )
    assert result.exit_code == 0, result.output
    assert body(fake.one("PATCH", "/addon-providers/acme-search")) == {
        "password": "new-pass",
        "plans": [{"name": "gold", "description": ""}],
    }
    nothing = kapal("addons:providers:update", "acme-search")
    assert nothing.exit_code == 1
    assert "Nothing to change" in nothing.output


def test_remove_needs_confirmation(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("DELETE", "/addon-providers/acme-search", PROVIDER)
    refused = kapal("addons:providers:remove", "acme-search")
    assert refused.exit_code == 1
    assert "--confirm acme-search" in refused.output
    assert fake.sent("DELETE", "/addon-providers/acme-search") == []
    wrong = kapal("addons:providers:remove", "acme-search", "--confirm", "acme")
    assert wrong.exit_code == 1
    result = kapal("addons:providers:remove", "acme-search", "--confirm", "acme-search")
    assert result.exit_code == 0, result.output
    assert "Removing add-on provider acme-search... done" in result.stderr
    fake.one("DELETE", "/addon-providers/acme-search")


def test_create_passes_config_options_and_shows_the_providers_message(
    kapal: Kapal, fake: FakeApi
) -> None:
    fake.on("POST", "/apps/demo/addons", addon(provision_message="Acme is ready."), status=201)
    result = kapal(
        "addons:create",
        "acme-search:test",
        "-a",
        "demo",
        "--config",
        "region=eu",
        "--config",
        "x=a=b",
    )
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", "/apps/demo/addons")) == {
        "plan": "acme-search:test",
        "config": {"region": "eu", "x": "a=b"},
    }
    assert "Acme is ready." in result.stdout
    assert "Created acme-search-silent-12345 as ACME_URL" in result.stdout
    bad = kapal("addons:create", "acme-search:test", "-a", "demo", "--config", "region")
    assert bad.exit_code == 1
    assert "expected KEY=VALUE" in bad.output


def test_create_takes_herokus_wait_flag(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/apps/demo/addons", addon(), status=201)
    result = kapal("addons:create", "acme-search:test", "--wait", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", "/apps/demo/addons")) == {"plan": "acme-search:test"}


@pytest.mark.parametrize("command", ["addons:upgrade", "addons:downgrade"])
def test_upgrade_sends_the_full_plan_name(kapal: Kapal, fake: FakeApi, command: str) -> None:
    path = "/apps/demo/addons/acme-search-silent-12345"
    fake.on("GET", "/apps/demo/addons/acme", addon())
    fake.on("PATCH", path, addon("acme-search:pro", provision_message="Moved to pro."))
    result = kapal(command, "acme", "pro", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert body(fake.one("PATCH", path)) == {"plan": {"name": "acme-search:pro"}}
    assert (
        "Changing acme-search-silent-12345 on ⬢ demo from acme-search:test to acme-search:pro"
        "... done"
    ) in result.stderr
    assert "Moved to pro." in result.stdout


def test_upgrade_of_a_kapal_service_shows_why_not(kapal: Kapal, fake: FakeApi) -> None:
    path = "/apps/demo/addons/postgresql-silent-1"
    pg = addon("kapal-postgresql:essential-0", name="postgresql-silent-1")
    pg["addon_service"] = {"id": "p", "name": "kapal-postgresql"}
    fake.on("GET", path, pg)
    fake.error("PATCH", path, 422, "invalid_params", "kapal-postgresql add-ons cannot change plans")
    result = kapal(
        "addons:upgrade", "postgresql-silent-1", "kapal-postgresql:standard-0", "-a", "demo"
    )
    assert result.exit_code == 1
    assert body(fake.one("PATCH", path)) == {"plan": {"name": "kapal-postgresql:standard-0"}}
    assert "cannot change plans" in result.output
