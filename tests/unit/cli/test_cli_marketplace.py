"""`kapal addons:services` and `addons:plans` against the fake API."""

from __future__ import annotations

from tests.unit.cli.cli_fakeapi import FakeApi, Kapal


def test_services_are_a_table(kapal: Kapal, fake: FakeApi) -> None:
    fake.on(
        "GET",
        "/addon-services",
        [
            {"id": "1", "name": "kapal-postgresql", "human_name": "Kapal Postgres", "state": "ga"},
            {"id": "2", "name": "kapal-redis", "human_name": "Kapal Redis", "state": "ga"},
        ],
    )
    result = kapal("addons:services")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["Slug", "Name", "State"]
    assert lines[2].split() == ["kapal-postgresql", "Kapal", "Postgres", "ga"]
    assert "kapal addons:plans SERVICE" in result.stdout


def test_plans_mark_the_default_and_show_limits(kapal: Kapal, fake: FakeApi) -> None:
    plan = {"id": "p", "human_name": "mini", "description": "20 connections, 25 MB memory"}
    fake.on(
        "GET",
        "/addon-services/kapal-redis/plans",
        [
            {**plan, "name": "kapal-redis:mini", "default": True},
            {**plan, "name": "kapal-redis:premium-0", "default": False},
        ],
    )
    result = kapal("addons:plans", "kapal-redis")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].split()[:2] == ["default", "kapal-redis:mini"]
    assert "20 connections, 25 MB memory" in lines[2]
    assert lines[3].split()[0] == "kapal-redis:premium-0"


def test_an_unknown_service_says_so(kapal: Kapal, fake: FakeApi) -> None:
    fake.error(
        "GET", "/addon-services/nope/plans", 404, "not_found", "Couldn't find that add-on service."
    )
    result = kapal("addons:plans", "nope")
    assert result.exit_code == 1
    assert "Couldn't find that add-on service." in result.output
