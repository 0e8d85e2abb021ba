"""`kapal buildpacks*`: read the list, change it, PUT it back whole."""

from __future__ import annotations

import httpx
import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

PATH = "/apps/demo/buildpack-installations"


def serve(fake: FakeApi, urls: list[str]) -> None:
    """A fake app whose buildpack list the PUTs really change."""
    state = list(urls)

    def listing() -> list[dict[str, object]]:
        return [{"ordinal": i, "buildpack": {"url": u, "name": u}} for i, u in enumerate(state)]

    def put(request: httpx.Request) -> httpx.Response:
        state[:] = [update["buildpack"] for update in body(request)["updates"]]
        return httpx.Response(200, json=listing())

    fake.on("GET", PATH, handler=lambda _: httpx.Response(200, json=listing()))
    fake.on("PUT", PATH, handler=put)


def sent_urls(fake: FakeApi) -> list[str]:
    return [u["buildpack"] for u in body(fake.one("PUT", PATH))["updates"]]


def test_buildpacks_lists_none_one_or_several(kapal: Kapal, fake: FakeApi) -> None:
    serve(fake, [])
    assert kapal("buildpacks", "-a", "demo").stdout == (
        "⬢ demo has no buildpacks set: its builds detect one.\n"
    )
    serve(fake, ["heroku/python"])
    assert kapal("buildpacks", "-a", "demo").stdout == (
        "=== ⬢ demo Buildpack URL\n\nheroku/python\n"
    )
    serve(fake, ["https://example.com/bp.git", "heroku/python"])
    assert kapal("buildpacks", "-a", "demo").stdout == (
        "=== ⬢ demo Buildpack URLs\n\n1. https://example.com/bp.git\n2. heroku/python\n"
    )
    assert_token(fake.sent("GET", PATH)[0])


def test_add_appends_or_inserts_at_an_index(kapal: Kapal, fake: FakeApi) -> None:
    serve(fake, ["heroku/python"])
    result = kapal("buildpacks:add", "-a", "demo", "/srv/buildpacks/static")
    assert result.exit_code == 0, result.output
    assert sent_urls(fake) == ["heroku/python", "/srv/buildpacks/static"]
    assert result.stdout == (
        "Buildpack added. The next release of ⬢ demo will use:\n"
        "  1. heroku/python\n"
        "  2. /srv/buildpacks/static\n"
        "Run `git push kapal main` to create a new release with them.\n"
    )
    fake.requests.clear()
    kapal("buildpacks:add", "-a", "demo", "-i", "1", "https://example.com/first.git")
    assert sent_urls(fake) == [
        "https://example.com/first.git",
        "heroku/python",
        "/srv/buildpacks/static",
    ]


def test_add_refuses_a_buildpack_already_set(kapal: Kapal, fake: FakeApi) -> None:
    serve(fake, ["heroku/python"])
    result = kapal("buildpacks:add", "-a", "demo", "heroku/python")
    assert result.exit_code == 1
    assert "The buildpack heroku/python is already set on the app." in result.stderr
    assert fake.sent("PUT", PATH) == []


def test_set_replaces_the_only_buildpack_or_the_one_at_index(kapal: Kapal, fake: FakeApi) -> None:
    serve(fake, ["heroku/python"])
    result = kapal("buildpacks:set", "-a", "demo", "/srv/bp")
    assert result.stdout.splitlines()[0] == (
        "Buildpack set. The next release of ⬢ demo will use /srv/bp."
    )
    assert sent_urls(fake) == ["/srv/bp"]

    serve(fake, ["a/one", "b/two"])
    result = kapal("buildpacks:set", "-a", "demo", "/srv/bp")
    assert result.exit_code == 1
    assert "say which one to replace with --index" in result.stderr
    fake.requests.clear()
    kapal("buildpacks:set", "-a", "demo", "-i", "2", "/srv/bp")
    assert sent_urls(fake) == ["a/one", "/srv/bp"]


@pytest.mark.parametrize(
    ("args", "left"),
    [(["heroku/python"], ["/srv/bp"]), (["-i", "2"], ["heroku/python"])],
)
def test_remove_by_url_or_index(
    kapal: Kapal, fake: FakeApi, args: list[str], left: list[str]
) -> None:
    serve(fake, ["heroku/python", "/srv/bp"])
    result = kapal("buildpacks:remove", "-a", "demo", *args)
    assert result.exit_code == 0, result.output
    assert sent_urls(fake) == left


def test_remove_needs_a_buildpack_that_is_set(kapal: Kapal, fake: FakeApi) -> None:
    serve(fake, ["heroku/python"])
    assert "is not set on the app" in kapal("buildpacks:remove", "-a", "demo", "x/y").stderr
    assert "no buildpack at index 3" in kapal("buildpacks:remove", "-a", "demo", "-i", "3").stderr
    assert "either a buildpack URL or --index" in kapal("buildpacks:remove", "-a", "demo").stderr
    assert fake.sent("PUT", PATH) == []


def test_clear_returns_the_app_to_detection(kapal: Kapal, fake: FakeApi) -> None:
    serve(fake, ["heroku/python", "/srv/bp"])
    result = kapal("buildpacks:clear", "-a", "demo")
    assert sent_urls(fake) == []
    assert result.stdout == (
        "Buildpacks cleared. The next release of ⬢ demo will detect its buildpack.\n"
    )


def test_a_refused_url_shows_the_apis_message(kapal: Kapal, fake: FakeApi) -> None:
    serve(fake, [])
    fake.error("PUT", PATH, 422, "invalid_params", "ftp://x is not a buildpack Kapal can use")
    result = kapal("buildpacks:add", "-a", "demo", "ftp://x")
    assert result.exit_code == 1
    assert "ftp://x is not a buildpack Kapal can use" in result.stderr
