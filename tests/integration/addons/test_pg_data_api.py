"""The path of Heroku's data API that `heroku pg:info` reads (/client/v11/databases/{add-on}),
served by Kapal's API, against the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kapal.services.apps import create_app
from kapal.services.auth import login, signup
from kapal.services.context import Context
from kapal.store.models import User

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("drop_addons")]


@pytest.fixture
def http(api_url: str, token: str, ctx: Context, user: User) -> Iterator[httpx.Client]:
    create_app(ctx, user, "pg-data")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as client:
        yield client


def test_a_database_by_add_on_id_or_name_with_its_url_and_info(
    http: httpx.Client, ctx: Context, api_url: str
) -> None:
    created = http.post("/apps/pg-data/addons", json={"plan": {"name": "heroku-postgresql"}})
    assert created.status_code == 201, created.text
    addon = created.json()
    url = http.get("/apps/pg-data/config-vars").json()["DATABASE_URL"]
    for ident in (addon["id"], addon["name"]):
        database = http.get(f"/client/v11/databases/{ident}")
        assert database.status_code == 200, database.text
        body = database.json()
        assert body["resource_url"] == url  # how the CLI names it DATABASE_URL
        rows = {row["name"]: row["values"] for row in body["info"]}
        assert rows["Plan"] and rows["Status"] == ["Available"]
        assert rows["Connections"] == ["0/20"]
        assert "Add-on" not in rows  # the CLI adds its own: it would show twice
    missing = http.get("/client/v11/databases/no-such-addon")
    assert missing.status_code == 404  # the CLI then says it is not yet provisioned
    # The rest of the Postgres data API (heroku pg:backups...) says what to use instead.
    elsewhere = http.get("/client/v11/apps/pg-data/transfers")
    assert elsewhere.status_code == 404
    assert "kapal pg:backups" in elsewhere.json()["message"]
    assert httpx.get(f"{api_url}/client/v11/apps/pg-data/transfers").status_code == 401
    signup(ctx, "eve@example.com", "password123")
    other = {"Authorization": f"Bearer {login(ctx, 'eve@example.com', 'password123')}"}
    theirs = httpx.get(f"{api_url}/client/v11/databases/{addon['id']}", headers=other)
    assert theirs.status_code == 404  # another user's add-on is not even there
