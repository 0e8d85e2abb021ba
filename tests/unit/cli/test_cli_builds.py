"""`kapal builds`, `builds:info`, `builds:output`, `builds:cache:purge`."""

from __future__ import annotations

from typing import Any

import httpx
from tests.unit.cli.cli_fakeapi import EMAIL, FakeApi, Kapal, assert_token

OUTPUT = "http://localhost:5000/build-output/b2/secret"


def build_json(id_: str, created: str, status: str, version: int | None, **extra: Any) -> dict:
    return {
        "id": id_,
        "status": status,
        "user": {"id": "u1", "email": EMAIL},
        "created_at": created,
        "updated_at": created,
        "output_stream_url": f"http://localhost:5000/build-output/{id_}/secret",
        "source_blob": {"url": None, "version": "1a2b3c4d5e6f7a8b"},
        "release": {"id": "r", "version": version, "status": "succeeded"} if version else None,
        "buildpacks": None,
        **extra,
    }


BUILDS = [
    build_json("b1", "2026-11-26T13:00:00Z", "succeeded", 3),
    build_json("b2", "2026-11-26T13:39:22Z", "failed", None, buildpacks=[{"url": "/srv/bp"}]),
]


def test_builds_lists_newest_first(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/builds", BUILDS)
    result = kapal("builds", "-a", "demo", env={"TZ": "UTC"})
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== ⬢ demo Builds\n\n"
        "b2  failed         1a2b3c4d  user@example.com  2026/11/26 13:39:22 +0000\n"
        "b1  succeeded  v3  1a2b3c4d  user@example.com  2026/11/26 13:00:00 +0000\n"
    )
    assert_token(fake.one("GET", "/apps/demo/builds"))
    assert kapal("builds", "-a", "demo", "-n", "1").stdout.count("user@example.com") == 1
    fake.on("GET", "/apps/demo/builds", [])
    assert kapal("builds", "-a", "demo").stdout == "⬢ demo has no builds.\n"


def test_builds_info_shows_the_newest_or_a_given_build(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/builds", BUILDS)
    fake.on("GET", "/apps/demo/builds/b1", BUILDS[0])
    newest = kapal("builds:info", "-a", "demo", env={"TZ": "UTC"}).stdout
    assert newest == (
        "=== Build b2\n\n"
        "Status:     failed\n"
        "By:         user@example.com\n"
        "Created:    2026/11/26 13:39:22 +0000\n"
        "Commit:     1a2b3c4d5e6f7a8b\n"
        "Buildpacks: /srv/bp\n"
        "Release:\n"
    )
    given = kapal("builds:info", "b1", "-a", "demo").stdout
    assert "Buildpacks: detected" in given and "Release:    v3" in given


def test_builds_output_prints_the_whole_output_without_the_token(
    kapal: Kapal, fake: FakeApi
) -> None:
    fake.on("GET", "/apps/demo/builds", BUILDS)
    text = "-----> Python app detected\n !     Push rejected, failed to compile Python app.\n"
    fake.on("GET", "/build-output/b2/secret", handler=lambda _: httpx.Response(200, text=text))
    result = kapal("builds:output", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == text
    assert "authorization" not in fake.one("GET", "/build-output/b2/secret").headers


def test_no_builds_yet(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/builds", [])
    result = kapal("builds:output", "-a", "demo")
    assert result.exit_code == 1
    assert "⬢ demo has no builds yet" in result.stderr


def test_cache_purge_needs_the_apps_name(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("DELETE", "/apps/demo/build-cache", {})
    refused = kapal("builds:cache:purge", "-a", "demo")
    assert refused.exit_code == 1
    assert "Re-run with --confirm demo to proceed." in refused.stderr
    assert "wrong" in kapal("builds:cache:purge", "-a", "demo", "--confirm", "wrong").stderr
    assert fake.sent("DELETE", "/apps/demo/build-cache") == []

    done = kapal("builds:cache:purge", "-a", "demo", "--confirm", "demo")
    assert done.exit_code == 0, done.output
    assert "Purging the build cache of ⬢ demo... done" in done.stderr
    assert_token(fake.one("DELETE", "/apps/demo/build-cache"))

    typed = kapal("builds:cache:purge", "-a", "demo", input="demo\n", stdin_tty=True)
    assert typed.exit_code == 0, typed.output
    assert "WARNING: This will delete the build cache of ⬢ demo." in typed.stderr
