"""Bad input gets a clear error and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.kapal_server import KapalServer, new_user

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(kapal_server: KapalServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Two signed-up users' API clients."""
    clients = []
    for name in ("carol", "dave"):
        response = httpx.post(
            f"{kapal_server.api_url}/signup",
            json={"email": f"{name}@example.com", "password": "long enough"},
        )
        assert response.status_code == 201, response.text
        token = response.json()["access_token"]["token"]
        clients.append(
            httpx.Client(
                base_url=kapal_server.api_url,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/vnd.heroku+json; version=3",
                },
            )
        )
    yield clients[0], clients[1]
    for client in clients:
        client.close()


def test_api_errors(kapal_server: KapalServer, api: tuple[httpx.Client, httpx.Client]) -> None:
    carol, dave = api
    assert carol.post("/apps", json={"name": "carols-app"}).status_code == 201

    missing = carol.get("/apps/no-such-app")
    assert missing.status_code == 404
    assert missing.json() == {"id": "not_found", "message": "Couldn't find that app."}

    anonymous = httpx.get(f"{kapal_server.api_url}/apps")
    assert anonymous.status_code == 401 and anonymous.json()["id"] == "unauthorized"
    bad_token = httpx.get(f"{kapal_server.api_url}/apps", headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401

    foreign = dave.get("/apps/carols-app")
    assert foreign.status_code == 403 and foreign.json()["id"] == "forbidden"
    assert dave.delete("/apps/carols-app").status_code == 403
    assert dave.patch("/apps/carols-app/config-vars", json={"X": "1"}).status_code == 403

    broken = carol.post("/apps", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["id"] == "bad_request"

    for bad in ("A", "-app", "app-", "UPPER", "a" * 31, "no_underscore"):
        response = carol.post("/apps", json={"name": bad})
        assert response.status_code == 422, bad
        assert response.json()["id"] == "invalid_params"
    taken = carol.post("/apps", json={"name": "carols-app"})
    assert taken.status_code == 409 and "taken" in taken.json()["message"]

    bad_key = carol.patch("/apps/carols-app/config-vars", json={"1BAD": "x"})
    assert bad_key.status_code == 422
    bad_value = carol.patch("/apps/carols-app/config-vars", json={"GOOD": 1})
    assert bad_value.status_code == 422
    assert carol.get("/apps/carols-app/config-vars").json() == {}
    versions = [r["version"] for r in carol.get("/apps/carols-app/releases").json()]
    assert versions == [1, 2]

    assert [a["name"] for a in dave.get("/apps").json()] == []


def test_push_errors(kapal_server: KapalServer) -> None:
    erin = new_user(kapal_server, "erin")
    erin.kapal("signup", "--email", "erin@example.com", input="erin's password\n")

    no_procfile = erin.checkout("no-procfile")
    erin.kapal("create", "erin-no-procfile", cwd=no_procfile)
    result = erin.git("push", "kapal", "main", cwd=no_procfile, check=False)
    assert result.returncode != 0 and "Procfile" in result.stderr
    assert "pre-receive hook declined" in result.stderr

    failing = erin.checkout("failing-requirements")
    erin.kapal("create", "erin-failing-reqs", cwd=failing)
    result = erin.git("push", "kapal", "main", cwd=failing, check=False)
    assert result.returncode != 0 and " !     " in result.stderr
    releases = erin.kapal("releases", "-a", "erin-failing-reqs").stdout
    assert "Deploy" not in releases

    # No token: git gets a 401 and gives up without a prompt.
    anon = new_user(kapal_server, "anonymous")
    repo = anon.checkout("flask-hello")
    url = f"{kapal_server.api_url}/erin-no-procfile.git"
    denied = anon.git("push", url, "main", cwd=repo, check=False)
    assert denied.returncode != 0
    assert (
        "401" in denied.stderr
        or "Authentication failed" in denied.stderr
        or ("could not read Username" in denied.stderr)
    )

    # An empty repository (nothing to push) changes nothing.
    empty = erin.home / "empty"
    empty.mkdir()
    erin.git("init", "-q", "-b", "main", cwd=empty)
    result = erin.git(
        "push", url.replace("erin-no-procfile", "erin-failing-reqs"), "main", cwd=empty, check=False
    )
    assert result.returncode != 0
