"""One add-on in several apps: addons:attach and addons:detach over the real API, with a real
PostgreSQL behind the add-on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from kapal.services.apps import create_app
from kapal.services.auth import signup
from kapal.services.context import Context
from kapal.store.models import User

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("drop_addons")]


@pytest.fixture
def http(api_url: str, token: str, ctx: Context, user: User) -> Iterator[httpx.Client]:
    create_app(ctx, user, "owner-app")
    create_app(ctx, user, "other-app")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as client:
        yield client


def config(http: httpx.Client, app: str) -> dict[str, str]:
    response = http.get(f"/apps/{app}/config-vars")
    assert response.status_code == 200
    return dict(response.json())


def releases(http: httpx.Client, app: str) -> list[str]:
    return [r["description"] for r in http.get(f"/apps/{app}/releases").json()]


def attach(http: httpx.Client, addon: str, app: str, name: str | None = None) -> Any:
    return http.post("/addon-attachments", json={"addon": addon, "app": app, "name": name})


def test_an_addon_attached_to_a_second_app_is_usable_there_until_detached(
    http: httpx.Client,
) -> None:
    addon = http.post("/apps/owner-app/addons", json={"plan": "kapal-postgresql"}).json()
    url = config(http, "owner-app")["DATABASE_URL"]

    attached = attach(http, addon["name"], "other-app", "REPORTS")
    assert attached.status_code == 201, attached.text
    assert attached.json()["app"]["name"] == "other-app"
    assert attached.json()["addon"]["app"]["name"] == "owner-app"
    assert config(http, "other-app")["REPORTS_URL"] == url
    assert releases(http, "other-app")[-1] == f"Attach REPORTS (@ref:{addon['name']})"
    with psycopg.connect(config(http, "other-app")["REPORTS_URL"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    # Both apps list it; each app's attachments are its own.
    assert [a["name"] for a in http.get("/apps/other-app/addons").json()] == [addon["name"]]
    names = [a["name"] for a in http.get("/apps/other-app/addon-attachments").json()]
    assert names == ["REPORTS"]
    names = [a["name"] for a in http.get("/apps/owner-app/addon-attachments").json()]
    assert names == ["DATABASE"]
    by_name = http.get("/apps/other-app/addon-attachments/REPORTS_URL").json()

    # A second attachment on the same app needs another name.
    again = attach(http, addon["name"], "other-app", "REPORTS")
    assert again.status_code == 409

    detached = http.delete(f"/addon-attachments/{by_name['id']}")
    assert detached.status_code == 200, detached.text
    assert "REPORTS_URL" not in config(http, "other-app")
    assert releases(http, "other-app")[-1] == f"Detach REPORTS (@ref:{addon['name']})"
    assert http.get("/apps/other-app/addons").json() == []
    assert config(http, "owner-app")["DATABASE_URL"] == url


def test_the_last_attachment_is_not_detached_and_destroy_detaches_everywhere(
    http: httpx.Client,
) -> None:
    addon = http.post("/apps/owner-app/addons", json={"plan": "kapal-postgresql"}).json()
    own = http.get("/apps/owner-app/addon-attachments").json()[0]
    only = http.delete(f"/addon-attachments/{own['id']}")
    assert only.status_code == 422 and "destroy" in only.json()["message"]

    assert attach(http, addon["name"], "other-app").status_code == 201
    assert "DATABASE_URL" in config(http, "other-app")  # its first database: DATABASE
    destroyed = http.delete(f"/apps/owner-app/addons/{addon['name']}")
    assert destroyed.status_code == 200, destroyed.text
    assert "DATABASE_URL" not in config(http, "owner-app")
    assert "DATABASE_URL" not in config(http, "other-app")
    assert releases(http, "other-app")[-1].startswith("Detach DATABASE")


def test_another_users_addon_cannot_be_attached_nor_their_attachments_removed(
    http: httpx.Client, ctx: Context, api_url: str
) -> None:
    addon = http.post("/apps/owner-app/addons", json={"plan": "kapal-postgresql"}).json()
    own = http.get("/apps/owner-app/addon-attachments").json()[0]
    eve, eve_token = signup(ctx, "eve@example.com", "correct horse 2")
    create_app(ctx, eve, "eve-app")
    with httpx.Client(
        base_url=api_url, headers={"Authorization": f"Bearer {eve_token}"}, timeout=60
    ) as as_eve:
        stolen = attach(as_eve, addon["name"], "eve-app")
        assert stolen.status_code in (403, 404)
        assert "DATABASE_URL" not in config(as_eve, "eve-app")
        assert as_eve.delete(f"/addon-attachments/{own['id']}").status_code in (403, 404)
        # Nor into someone else's app.
        theirs = as_eve.post("/apps/eve-app/addons", json={"plan": "kapal-postgresql"}).json()
        pushed = attach(as_eve, theirs["name"], "owner-app")
        assert pushed.status_code in (403, 404)
    assert "DATABASE_URL" in config(http, "owner-app")
    assert http.get("/apps/owner-app/addon-attachments").json()[0]["id"] == own["id"]
