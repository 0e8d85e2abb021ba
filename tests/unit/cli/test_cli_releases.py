from __future__ import annotations

import json

from tests.unit.cli.cli_fakeapi import EMAIL, FakeApi, Kapal, assert_token, body, release_json

WHEN = "2026/11/26 13:39:22 +0000"


def history() -> list[dict]:
    return [
        release_json(5, "Set FOO config vars", current=True),
        release_json(4, "Deploy abc12345"),
        release_json(3, "Deploy 0badf00d", status="failed"),
        release_json(2, "Enable Logplex", slug=None),
        release_json(1, "Initial release", slug=None),
    ]


def test_releases(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/releases", history()[:2])
    result = kapal("releases", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== demo Releases - Current: v5\n\n"
        f"v5  Set FOO config vars  {EMAIL}  {WHEN}\n"
        f"v4  Deploy abc12345      {EMAIL}  {WHEN}\n"
    )
    request = fake.one("GET", "/apps/demo/releases")
    assert_token(request)
    assert request.headers["range"] == "version ..; order=desc,max=15"


def test_releases_num_and_json(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/releases", history())
    result = kapal("releases", "-a", "demo", "-n", "3", "--json")
    assert json.loads(result.stdout)[0]["version"] == 5
    assert fake.requests[0].headers["range"] == "version ..; order=desc,max=3"


def test_releases_none(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/releases", [])
    assert kapal("releases", "-a", "demo").stdout == "⬢ demo has no releases.\n"


def test_release_info(kapal: Kapal, fake: FakeApi) -> None:
    failed = release_json(3, "Deploy 0badf00d", status="failed", output="migrate: boom\n")
    fake.on("GET", "/apps/demo/releases/3", failed)
    result = kapal("releases:info", "v3", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== Release v3\n\n"
        f"By:     {EMAIL}\n"
        "Change: Deploy 0badf00d release command failed\n"
        "Status: failed\n"
        f"When:   {WHEN}\n"
        "\n=== Release command output\n\nmigrate: boom\n"
    )


def test_release_info_defaults_to_the_newest(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/releases", history()[:1])
    result = kapal("releases:info", "-a", "demo")
    assert "=== Release v5" in result.stdout
    assert "Status: succeeded (current)" in result.stdout


def test_rollback_to_a_version(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/releases/7", release_json(7, "Deploy abc"))
    fake.on("POST", "/apps/demo/releases", release_json(9, "Rollback to v7"), status=201)
    result = kapal("releases:rollback", "v7", "-a", "demo")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "Rolling back ⬢ demo to v7... done, v9"
    assert lines[1].startswith(" !    ") and "config vars" in lines[1]
    assert lines[2] == " !    To undo it, run: kapal rollback v8"
    post = fake.one("POST", "/apps/demo/releases")
    assert_token(post)
    assert body(post) == {"release": "rel-7"}


def test_bare_rollback_picks_the_previous_live_release(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/releases", history())
    fake.on("POST", "/apps/demo/releases", release_json(6, "Rollback to v4"), status=201)
    result = kapal("rollback", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Rolling back ⬢ demo to v4... done, v6\n")
    assert body(fake.one("POST", "/apps/demo/releases")) == {"release": "rel-4"}


def test_bare_rollback_with_nothing_to_go_back_to(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/releases", history()[3:])
    result = kapal("rollback", "-a", "demo")
    assert result.exit_code == 1
    assert result.stderr == " ▸    No earlier release of ⬢ demo to roll back to.\n"
    assert fake.sent("POST", "/apps/demo/releases") == []


def test_rollback_refused_by_the_api(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/releases/2", release_json(2, "Enable Logplex", slug=None))
    message = "Cannot roll back to v2: that release has no slug."
    fake.error("POST", "/apps/demo/releases", 422, "invalid_params", message)
    result = kapal("rollback", "2", "-a", "demo")
    assert result.exit_code == 1
    assert result.stderr == f"Rolling back ⬢ demo to v2... !\n ▸    {message}\n"
