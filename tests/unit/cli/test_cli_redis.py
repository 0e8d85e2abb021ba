"""`kapal redis:cli`, `redis:info` and `redis:maxmemory` against the fake API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

from kapal.cli.errors import CliError
from kapal.cli.redis import pick_redis, redis_cli_invocation

ADDONS = "/apps/demo/addons"
PASSWORD = "0123456789abcdef" * 4


def addon(name: str, config_vars: list[str], service: str = "kapal-redis") -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "config_vars": config_vars,
        "addon_service": {"id": "s", "name": service},
        "plan": {"name": f"{service}:mini"},
        "state": "provisioned",
    }


RED = addon("redis-round-1", ["REDIS_URL"])
BLUE = addon("redis-square-2", ["KAPAL_REDIS_BLUE_URL"])
PG = addon("postgresql-flat-3", ["DATABASE_URL"], service="kapal-postgresql")


def database(name: str, rows: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "addon_id": f"id-{name}",
        "name": name,
        "plan": "mini",
        "version": "7.0.15",
        "info": [{"name": key, "values": [value]} for key, value in rows],
    }


def test_info_shows_every_redis_of_the_app(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ADDONS, [PG, RED, BLUE])
    fake.on(
        "GET",
        "/redis/v0/databases/redis-round-1",
        database("redis-round-1", [("Plan", "mini"), ("Status", "available")]),
    )
    fake.on(
        "GET",
        "/redis/v0/databases/redis-square-2",
        database("redis-square-2", [("Plan", "premium-0"), ("Maxmemory", "allkeys-lru")]),
    )
    result = kapal("redis:info", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== redis-round-1 (REDIS_URL)\n\n"
        "Plan:   mini\n"
        "Status: available\n"
        "\n"
        "=== redis-square-2 (KAPAL_REDIS_BLUE_URL)\n\n"
        "Plan:      premium-0\n"
        "Maxmemory: allkeys-lru\n"
    )
    assert_token(fake.one("GET", "/redis/v0/databases/redis-round-1"))


def test_info_of_one_named_by_attachment_config_var_or_name(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ADDONS, [RED, BLUE])
    fake.on("GET", "/redis/v0/databases/redis-square-2", database("x", [("Plan", "mini")]))
    for name in ("KAPAL_REDIS_BLUE", "KAPAL_REDIS_BLUE_URL", "redis-square-2"):
        result = kapal("redis:info", name, "-a", "demo")
        assert result.stdout.startswith("=== redis-square-2 (KAPAL_REDIS_BLUE_URL)"), name
    assert fake.sent("GET", "/redis/v0/databases/redis-round-1") == []


def test_unknown_or_missing_redis_is_an_error(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ADDONS, [RED])
    unknown = kapal("redis:info", "CACHE", "-a", "demo")
    assert unknown.exit_code == 1
    assert "Unknown Redis add-on: CACHE. Valid options are: redis-round-1" in unknown.stderr
    fake.on("GET", ADDONS, [PG])
    none = kapal("redis:maxmemory", "-a", "demo", "--policy", "allkeys-lru")
    assert none.exit_code == 1
    assert "⬢ demo has no Redis add-ons." in none.stderr


def test_maxmemory_sets_the_policy_and_says_what_it_does(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ADDONS, [RED, BLUE])
    fake.on(
        "PATCH",
        "/redis/v0/databases/redis-round-1/config",
        {
            "maxmemory_policy": {
                "value": "allkeys-lru",
                "default": "noeviction",
                "values": {"allkeys-lru": "removes less recently used keys first"},
            }
        },
    )
    result = kapal("redis:maxmemory", "-a", "demo", "-p", "allkeys-lru")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Maxmemory policy for redis-round-1 (REDIS_URL) set to allkeys-lru.\n"
        "allkeys-lru removes less recently used keys first.\n"
    )
    request = fake.one("PATCH", "/redis/v0/databases/redis-round-1/config")
    assert body(request) == {"maxmemory_policy": "allkeys-lru"}


def test_maxmemory_passes_the_apis_refusal_on(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", ADDONS, [RED])
    fake.error(
        "PATCH",
        "/redis/v0/databases/redis-round-1/config",
        422,
        "invalid_params",
        "Invalid policy 'lru'. Valid policies: noeviction, allkeys-lfu.",
    )
    result = kapal("redis:maxmemory", "-a", "demo", "--policy", "lru")
    assert result.exit_code == 1
    assert "Invalid policy 'lru'. Valid policies: noeviction" in result.stderr


def test_maxmemory_needs_a_policy(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("redis:maxmemory", "-a", "demo")
    assert result.exit_code == 2
    assert "Missing option '-p' / '--policy'" in result.stderr
    assert fake.requests == []


def test_pick_prefers_the_one_setting_redis_url() -> None:
    assert pick_redis("demo", [BLUE, RED], None)["name"] == "redis-round-1"
    assert pick_redis("demo", [BLUE], None)["name"] == "redis-square-2"
    with pytest.raises(CliError, match=r"Please specify a single instance\. Found: "):
        pick_redis("demo", [BLUE, addon("redis-other-4", ["KAPAL_REDIS_RED_URL"])], None)


def test_invocation_keeps_the_password_off_the_command_line() -> None:
    argv, env = redis_cli_invocation(
        "/usr/bin/redis-cli", f"redis://:{PASSWORD}@localhost:16500", {"PATH": "/usr/bin"}
    )
    assert argv == ["/usr/bin/redis-cli", "-h", "localhost", "-p", "16500"]
    assert env == {"PATH": "/usr/bin", "REDISCLI_AUTH": PASSWORD}
    argv, env = redis_cli_invocation(
        "redis-cli", "rediss://app%40x:p%2Fw@redis.example.com:6380/2", {"REDISCLI_AUTH": "old"}
    )
    assert argv == [
        "redis-cli",
        "-h",
        "redis.example.com",
        "-p",
        "6380",
        "--user",
        "app@x",
        "--tls",
        "-n",
        "2",
    ]
    assert env == {"REDISCLI_AUTH": "p/w"}
    with pytest.raises(CliError, match="not a redis:// URL"):
        redis_cli_invocation("redis-cli", "postgres://u:p@localhost/db", {})


def fake_redis_cli(directory: Path) -> Path:
    """A `redis-cli` that records its arguments and REDISCLI_AUTH, and exits with 3."""
    program = directory / "redis-cli"
    record = directory / "record.json"
    program.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps("
        "{'argv': sys.argv[1:], 'auth': os.environ.get('REDISCLI_AUTH')}))\n"
        "sys.exit(3)\n"
    )
    program.chmod(0o755)
    return record


def test_redis_cli_runs_the_local_client_with_the_apps_url(
    kapal: Kapal, fake: FakeApi, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = fake_redis_cli(bin_dir)
    fake.on("GET", ADDONS, [RED, BLUE])
    fake.on(
        "GET",
        "/apps/demo/config-vars",
        {
            "REDIS_URL": f"redis://:{PASSWORD}@localhost:16500",
            "KAPAL_REDIS_BLUE_URL": "redis://:x@localhost:16501",
        },
    )
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    result = kapal("redis:cli", "-a", "demo", "-c", "SET k 'two words'", env={"PATH": path})
    assert result.exit_code == 3  # redis-cli's own status
    assert "--> Connecting to redis-round-1" in result.stderr
    recorded = json.loads(record.read_text())
    assert recorded == {
        "argv": ["-h", "localhost", "-p", "16500", "SET", "k", "two words"],
        "auth": PASSWORD,
    }


def test_redis_cli_without_a_local_client(kapal: Kapal, fake: FakeApi, tmp_path: Path) -> None:
    fake.on("GET", ADDONS, [RED])
    fake.on("GET", "/apps/demo/config-vars", {"REDIS_URL": "redis://:pw@localhost:16500"})
    result = kapal("redis:cli", "-a", "demo", env={"PATH": str(tmp_path)})
    assert result.exit_code == 1
    assert "redis-cli command could not be located" in result.stderr
