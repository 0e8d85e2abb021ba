"""Buildpack URLs as users give them."""

from __future__ import annotations

import pytest

from kapal.domain.buildpacks import parse_buildpack, shown
from kapal.domain.errors import InvalidParams


@pytest.mark.parametrize(
    ("url", "kind", "location", "ref"),
    [
        ("heroku/python", "builtin", "kapal/python", ""),
        ("kapal/python", "builtin", "kapal/python", ""),
        ("/srv/buildpacks/static/", "path", "/srv/buildpacks/static", ""),
        ("https://example.com/bp.git", "git", "https://example.com/bp.git", ""),
        ("https://example.com/bp.git#v1.2", "git", "https://example.com/bp.git", "v1.2"),
        ("file:///srv/repo.git#release/3", "git", "file:///srv/repo.git", "release/3"),
    ],
)
def test_kinds_of_buildpack(url: str, kind: str, location: str, ref: str) -> None:
    parsed = parse_buildpack(url)
    assert (parsed.url, parsed.kind, parsed.location, parsed.ref) == (url, kind, location, ref)


@pytest.mark.parametrize(
    "url",
    [
        "heroku/ruby",
        "ssh://host/repo.git",
        "https:///no-host",
        "/srv/a/../b",
        "/srv//b",
        "https://h/r.git#-x",
        "https://h/r.git#a..b",
        "https://h/r .git",
        "/srv/\x1b[31m",
        "x" * 3000,
    ],
)
def test_refused(url: str) -> None:
    with pytest.raises(InvalidParams):
        parse_buildpack(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:tok@example.com/bp.git#v1", "https://***@example.com/bp.git#v1"),
        ("https://tok@example.com/bp.git", "https://***@example.com/bp.git"),
        ("https://example.com/bp.git", "https://example.com/bp.git"),
        ("/srv/bp", "/srv/bp"),
        ("heroku/python", "heroku/python"),
    ],
)
def test_credentials_in_a_url_are_not_shown(url: str, expected: str) -> None:
    assert shown(url) == expected
