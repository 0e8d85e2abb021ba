"""`kapal maintenance`, `maintenance:on`, `maintenance:off`."""

from __future__ import annotations

import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, app_json, assert_token, body


@pytest.mark.parametrize(("state", "shown"), [(True, "on"), (False, "off")])
def test_maintenance_says_on_or_off(kapal: Kapal, fake: FakeApi, state: bool, shown: str) -> None:
    fake.on("GET", "/apps/demo", app_json(maintenance=state))
    result = kapal("maintenance", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{shown}\n"
    assert_token(fake.one("GET", "/apps/demo"))


def test_a_missing_maintenance_field_reads_as_off(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo", {"name": "demo"})
    assert kapal("maintenance", "-a", "demo").stdout == "off\n"


@pytest.mark.parametrize(("command", "word", "value"), [("on", "on", True), ("off", "off", False)])
def test_maintenance_on_and_off(
    kapal: Kapal, fake: FakeApi, command: str, word: str, value: bool
) -> None:
    fake.on("PATCH", "/apps/demo", app_json(maintenance=value))
    result = kapal(f"maintenance:{command}", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == f"Turning {word} maintenance mode for ⬢ demo... done\n"
    request = fake.one("PATCH", "/apps/demo")
    assert_token(request)
    assert body(request) == {"maintenance": value}


def test_maintenance_on_for_an_app_one_cannot_use(kapal: Kapal, fake: FakeApi) -> None:
    fake.error("PATCH", "/apps/nope", 404, "not_found", "Couldn't find that app.")
    result = kapal("maintenance:on", "-a", "nope")
    assert result.exit_code != 0
    assert result.stderr.startswith("Turning on maintenance mode for ⬢ nope... !\n")
    assert "Couldn't find that app." in result.stderr


def test_the_app_comes_from_the_environment(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("PATCH", "/apps/envapp", app_json("envapp"))
    assert kapal("maintenance:off", env={"KAPAL_APP": "envapp"}).exit_code == 0
    assert fake.one("PATCH", "/apps/envapp")
