from __future__ import annotations

import json

import httpx
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body, release_json

CONFIG = {"TIMES": "2", "PAPERTRAIL_API_TOKEN": "w9En", "GREETING": "hello world"}


def newest(version: int) -> list[dict]:
    return [release_json(version, "Set config vars", current=True)]


def test_config(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/config-vars", CONFIG)
    result = kapal("config", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== demo Config Vars\n\n"
        "GREETING:             hello world\n"
        "PAPERTRAIL_API_TOKEN: w9En\n"
        "TIMES:                2\n"
    )
    assert_token(fake.one("GET", "/apps/demo/config-vars"))


def test_config_shell_and_json(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/config-vars", CONFIG)
    assert kapal("config", "-a", "demo", "--shell").stdout == (
        "GREETING='hello world'\nPAPERTRAIL_API_TOKEN=w9En\nTIMES=2\n"
    )
    assert json.loads(kapal("config", "-a", "demo", "--json").stdout) == CONFIG


def test_config_get_prints_the_raw_value(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/config-vars", CONFIG)
    assert kapal("config:get", "GREETING", "-a", "demo").stdout == "hello world\n"
    assert kapal("config:get", "MISSING", "-a", "demo").stdout == "\n"


def test_config_set(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("PATCH", "/apps/demo/config-vars", {**CONFIG, "A": "1", "C": "x=y"})
    fake.on("GET", "/apps/demo/releases", newest(12))
    result = kapal("config:set", "A=1", "C=x=y", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Setting A, C and restarting ⬢ demo... done, v12\n"
    assert result.stdout == "A: 1\nC: x=y\n"
    patch = fake.one("PATCH", "/apps/demo/config-vars")
    assert_token(patch)
    assert body(patch) == {"A": "1", "C": "x=y"}
    releases = fake.one("GET", "/apps/demo/releases")
    assert releases.headers["range"] == "version ..; order=desc,max=1"


def test_config_set_empty_value_is_allowed(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("PATCH", "/apps/demo/config-vars", {"EMPTY": ""})
    fake.on("GET", "/apps/demo/releases", newest(3))
    assert kapal("config:set", "EMPTY=", "-a", "demo").exit_code == 0
    assert body(fake.one("PATCH", "/apps/demo/config-vars")) == {"EMPTY": ""}


def test_config_set_checks_syntax_before_any_request(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("config:set", "FOO", "-a", "demo")
    assert result.exit_code == 1
    assert result.stderr == " ▸    FOO is invalid. Must be in the format KEY=value.\n"
    result = kapal("config:set", "MY-KEY=1", "-a", "demo")
    assert result.exit_code == 1
    assert "'MY-KEY' is not a valid config var name" in result.stderr
    assert kapal("config:set", "-a", "demo").exit_code == 1
    assert fake.requests == []


def test_config_unset(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("PATCH", "/apps/demo/config-vars", {"TIMES": "2"})
    fake.on("GET", "/apps/demo/releases", newest(13))
    result = kapal("config:unset", "A", "C", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Unsetting A, C and restarting ⬢ demo... done, v13\n"
    assert result.stdout == ""
    assert body(fake.one("PATCH", "/apps/demo/config-vars")) == {"A": None, "C": None}


def test_config_set_api_error(kapal: Kapal, fake: FakeApi) -> None:
    def too_big(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422, json={"id": "invalid_params", "message": "Config vars exceed 32 kB."}
        )

    fake.on("PATCH", "/apps/demo/config-vars", handler=too_big)
    result = kapal("config:set", "A=1", "-a", "demo")
    assert result.exit_code == 1
    assert result.stderr.endswith("... !\n ▸    Config vars exceed 32 kB.\n")
