"""/apps/{app}/buildpack-installations through the real ASGI app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.api.test_api import signup

PATH = "/apps/my-app/buildpack-installations"


def put(client: TestClient, auth: dict[str, str], *urls: object) -> Any:
    return client.put(PATH, json={"updates": [{"buildpack": u} for u in urls]}, headers=auth)


def test_buildpacks_are_replaced_whole_and_listed_in_order(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    assert client.get(PATH, headers=auth).json() == []

    urls = ["https://example.com/static.git#v1", "heroku/python", "/srv/buildpacks/stamp"]
    response = put(client, auth, *urls)
    assert response.status_code == 200
    expected = [
        {"ordinal": i, "buildpack": {"url": url, "name": url}} for i, url in enumerate(urls)
    ]
    assert response.json() == expected
    assert client.get(PATH, headers=auth).json() == expected

    assert put(client, auth).json() == []
    assert client.get(PATH, headers=auth).json() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/bp", "is not a buildpack Kapal can use"),
        ("relative/path", "is not a buildpack Kapal can use"),
        ("/srv/../etc", "must be a plain absolute path"),
        ("https://example.com/bp.git#--upload-pack=x", "not a valid git branch or tag"),
        ("https://example.com/bp\n.git", "is not a valid buildpack URL"),
        ("", "A buildpack URL is required."),
        (42, "Invalid"),
    ],
)
def test_bad_urls_are_refused_and_change_nothing(
    client: TestClient, url: object, message: str
) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    put(client, auth, "heroku/python")
    response = put(client, auth, url)
    assert response.status_code == 422
    error = response.json()
    assert error["id"] == "invalid_params"
    assert message in error["message"]
    assert [b["buildpack"]["url"] for b in client.get(PATH, headers=auth).json()] == [
        "heroku/python"
    ]


def test_duplicates_and_too_many_are_refused(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    assert "more than once" in put(client, auth, "heroku/python", "heroku/python").json()["message"]
    many = [f"/srv/bp{i}" for i in range(17)]
    assert "at most 16" in put(client, auth, *many).json()["message"]


def test_only_the_apps_owner_sees_or_sets_its_buildpacks(client: TestClient) -> None:
    auth = signup(client)
    other = signup(client, "bob@example.com")
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    assert client.get(PATH, headers=other).status_code == 403
    assert put(client, other, "heroku/python").status_code == 403
    assert client.get(PATH).status_code == 401
    assert client.get(PATH, headers=auth).json() == []
