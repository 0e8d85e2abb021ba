"""/apps/{app}/pg-databases over HTTP, against the real API and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from kapal.services.apps import create_app
from kapal.services.auth import login, signup
from kapal.services.context import Context
from kapal.store.models import User

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("drop_addons")]
BASE = "/apps/pg-api/pg-databases"


@pytest.fixture
def http(api_url: str, token: str, ctx: Context, user: User) -> Iterator[httpx.Client]:
    create_app(ctx, user, "pg-api")
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.heroku+json; version=3",
    }
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as client:
        yield client


def create(http: httpx.Client, plan: str = "kapal-postgresql") -> dict[str, str]:
    response = http.post("/apps/pg-api/addons", json={"plan": plan})
    assert response.status_code == 201, response.text
    return dict(response.json())


def config(http: httpx.Client) -> dict[str, str]:
    return dict(http.get("/apps/pg-api/config-vars").json())


def test_info_sessions_and_kill(http: httpx.Client) -> None:
    addon = create(http)
    assert http.get(BASE).json()[0]["addon"]["name"] == addon["name"]
    with psycopg.connect(config(http)["DATABASE_URL"], autocommit=True) as conn:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        info = http.get(f"{BASE}/DATABASE_URL").json()
        sessions = http.get(f"{BASE}/DATABASE/sessions").json()
        idle = http.get(f"{BASE}/DATABASE/sessions", params={"all": "true"}).json()
    assert info["addon"]["name"] == addon["name"]
    assert info["config_vars"] == ["DATABASE_URL"]
    assert (info["status"], info["connections"], info["connection_limit"]) == ("available", 1, 20)
    assert info["storage_limit"] == 1 << 30 and info["tables"] == 0
    rows = {row["name"]: row["values"] for row in info["info"]}
    assert rows["Connections"] == ["1/20"] and rows["Add-on"] == [addon["name"]]
    assert sessions == []
    assert [s["pid"] for s in idle] == [pid] and idle[0]["state"] == "idle"

    wrong = http.post(f"{BASE}/DATABASE/actions/kill", json={"pid": 1, "force": True})
    assert wrong.status_code == 404
    assert wrong.json() == {
        "id": "not_found",
        "message": f"Process 1 is not a connection to {addon['name']}.",
    }
    unknown = http.get(f"{BASE}/NOPE")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "Unknown database: NOPE. Valid options are: DATABASE_URL"


def test_rotate_reset_and_promote(http: httpx.Client) -> None:
    first = create(http)
    old = config(http)["DATABASE_URL"]
    rotated = http.post(f"{BASE}/DATABASE/actions/rotate-credentials")
    assert rotated.status_code == 200, rotated.text
    (release,) = rotated.json()["releases"]
    assert release["app"]["name"] == "pg-api"
    new = config(http)["DATABASE_URL"]
    assert new != old
    assert http.get(f"/apps/pg-api/releases/{release['version']}").json()["description"] == (
        f"Rotate credentials of {first['name']} (DATABASE_URL)"
    )

    with psycopg.connect(new, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
    assert http.post(f"{BASE}/{first['name']}/actions/reset").status_code == 200
    assert http.get(f"{BASE}/DATABASE").json()["tables"] == 0

    second = create(http)
    (var,) = second["config_vars"]
    promoted = http.post(f"{BASE}/{var}/actions/promote").json()
    assert promoted["addon"]["name"] == second["name"]
    assert promoted["config_vars"] == ["DATABASE_URL", var]
    kept = promoted["previous"]["config_var"]
    assert promoted["previous"]["name"] == first["name"]
    after = config(http)
    assert after["DATABASE_URL"] == after[var] and after[kept] == new
    headings = [d["config_vars"] for d in http.get(BASE).json()]
    assert headings == [[kept], ["DATABASE_URL", var]]


def test_other_users_are_refused(http: httpx.Client, ctx: Context, api_url: str) -> None:
    create(http)
    signup(ctx, "mallory@example.com", "password123")
    token = login(ctx, "mallory@example.com", "password123")
    response = httpx.post(
        f"{api_url}{BASE}/DATABASE/actions/reset", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert response.json()["id"] == "forbidden"
