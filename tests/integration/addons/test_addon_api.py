"""The add-on routes over HTTP, with Heroku's shapes, against the real API and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kapal.services.apps import create_app
from kapal.services.context import Context
from kapal.store.models import User

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("drop_addons")]


@pytest.fixture
def http(api_url: str, token: str, ctx: Context, user: User) -> Iterator[httpx.Client]:
    create_app(ctx, user, "api-app")
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.heroku+json; version=3",
    }
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as client:
        yield client


def test_addon_services_lists_postgres_redis_mysql_and_rabbitmq(http: httpx.Client) -> None:
    services = http.get("/addon-services").json()
    assert [s["name"] for s in services] == [
        "kapal-postgresql",
        "kapal-redis",
        "kapal-mysql",
        "kapal-rabbitmq",
    ]
    service = services[0]
    assert service["state"] == "ga"
    assert service["human_name"]
    assert http.get(f"/addon-services/{service['id']}").json()["name"] == "kapal-postgresql"
    assert http.get("/addon-services/heroku-postgresql").json()["id"] == service["id"]


def test_create_like_the_heroku_cli_then_list_get_and_delete(http: httpx.Client) -> None:
    # `heroku addons:create heroku-postgresql` sends exactly this body.
    created = http.post(
        "/apps/api-app/addons",
        json={"attachment": {}, "config": {}, "plan": {"name": "heroku-postgresql"}},
    )
    assert created.status_code == 201, created.text
    addon = created.json()
    assert addon["name"].startswith("postgresql-")
    assert addon["app"]["name"] == "api-app"
    assert addon["addon_service"]["name"] == "heroku-postgresql"
    assert addon["plan"]["name"] == "heroku-postgresql:essential-0"
    assert addon["state"] == "provisioned"
    assert addon["config_vars"] == ["DATABASE_URL"]
    assert addon["billed_price"]["cents"] == 0
    assert addon["created_at"].endswith("Z")

    config = http.get("/apps/api-app/config-vars").json()
    assert config["DATABASE_URL"].startswith("postgres://")
    assert "@localhost:" in config["DATABASE_URL"]

    assert [a["id"] for a in http.get("/apps/api-app/addons").json()] == [addon["id"]]
    assert [a["id"] for a in http.get("/addons").json()] == [addon["id"]]
    assert http.get(f"/apps/api-app/addons/{addon['name']}").json()["id"] == addon["id"]

    (attachment,) = http.get("/apps/api-app/addon-attachments").json()
    assert attachment["name"] == "DATABASE"
    assert attachment["config_vars"] == ["DATABASE_URL"]
    assert attachment["addon"]["plan"]["name"] == "heroku-postgresql:essential-0"
    assert attachment["addon"]["app"]["name"] == "api-app"
    assert http.get("/addon-attachments").json() == [attachment]

    deleted = http.delete(f"/apps/api-app/addons/{addon['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["state"] == "deprovisioned"
    assert http.get("/apps/api-app/addons").json() == []
    assert "DATABASE_URL" not in http.get("/apps/api-app/config-vars").json()
    missing = http.get(f"/apps/api-app/addons/{addon['id']}")
    assert (missing.status_code, missing.json()["id"]) == (404, "not_found")


def test_create_with_string_plan_name_and_attachment(http: httpx.Client) -> None:
    body = {
        "plan": "kapal-postgresql:essential-1",
        "name": "reports-db",
        "attachment": {"name": "REPORTS"},
    }
    addon = http.post("/apps/api-app/addons", json=body).json()
    assert (addon["name"], addon["config_vars"]) == ("reports-db", ["REPORTS_URL"])
    assert addon["plan"]["name"] == "kapal-postgresql:essential-1"


@pytest.mark.parametrize(
    "plan", ["kapal-mongodb", {"name": "kapal-postgresql:enormous"}, "heroku-postgresql:hobby-dev"]
)
def test_unknown_service_or_plan_is_invalid_params_with_the_known_list(
    http: httpx.Client, plan: object
) -> None:
    response = http.post("/apps/api-app/addons", json={"plan": plan})
    assert response.status_code == 422
    body = response.json()
    assert body["id"] == "invalid_params"
    assert "kapal-postgresql" in body["message"]
    assert http.get("/apps/api-app/addons").json() == []


def test_a_missing_plan_is_invalid_params(http: httpx.Client) -> None:
    response = http.post("/apps/api-app/addons", json={})
    assert (response.status_code, response.json()["id"]) == (422, "invalid_params")


def test_requires_a_token(api_url: str) -> None:
    response = httpx.get(f"{api_url}/apps/api-app/addons")
    assert response.status_code == 401
