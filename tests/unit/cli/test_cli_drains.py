"""`kapal drains*` against the fake API."""

from __future__ import annotations

import json

from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

DRAINS = "/apps/demo/log-drains"
TOKEN = "d.6b7c9f5e-0000-4000-8000-000000000001"


def drain(url: str = "syslog+tls://logs.example.com:6514") -> dict[str, object]:
    return {"id": "id-1", "url": url, "token": TOKEN, "addon": None}


def test_drains_lists_urls_and_tokens(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", DRAINS, [drain(), drain("https://example.com/in")])
    result = kapal("drains", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== Drains\n"
        f"syslog+tls://logs.example.com:6514 ({TOKEN})\n"
        f"https://example.com/in ({TOKEN})\n"
    )
    assert_token(fake.one("GET", DRAINS))
    as_json = kapal("drains", "-a", "demo", "--json").stdout
    assert json.loads(as_json)[0]["token"] == TOKEN


def test_drains_says_when_there_are_none(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", DRAINS, [])
    assert "has no drains" in kapal("drains", "-a", "demo").stdout


def test_drains_add_sends_the_url_and_shows_the_token(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", DRAINS, drain(), status=201)
    result = kapal("drains:add", "syslog+tls://logs.example.com:6514", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", DRAINS)) == {"url": "syslog+tls://logs.example.com:6514"}
    assert "Successfully added drain syslog+tls://logs.example.com:6514" in result.stdout
    assert TOKEN in result.stdout


def test_drains_remove_names_the_drain_in_the_path(kapal: Kapal, fake: FakeApi) -> None:
    path = f"{DRAINS}/syslog://h:1"  # the fake sees the path decoded
    fake.on("DELETE", path, drain("syslog://h:1"))
    result = kapal("drains:remove", "syslog://h:1", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert "Successfully removed drain syslog://h:1" in result.stdout


def test_an_invalid_url_shows_the_apis_message(kapal: Kapal, fake: FakeApi) -> None:
    fake.error("POST", DRAINS, 422, "invalid_params", "Drain URLs start with syslog://")
    result = kapal("drains:add", "ftp://x", "-a", "demo")
    assert result.exit_code == 1
    assert "Drain URLs start with syslog://" in result.output
