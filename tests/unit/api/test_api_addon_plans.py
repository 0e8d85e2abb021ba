"""/addon-services/{service}/plans: Heroku's plan shape, what each plan allows."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_services_plans_are_listed_with_the_default_marked(client: TestClient) -> None:
    plans = client.get("/addon-services/kapal-redis/plans").json()
    assert [p["name"] for p in plans] == [
        "kapal-redis:mini",
        "kapal-redis:premium-0",
        "kapal-redis:premium-1",
        "kapal-redis:premium-2",
    ]
    assert [p["default"] for p in plans] == [True, False, False, False]
    mini = plans[0]
    assert mini["limits"] == {
        "connections": 20,
        "storage_mb": None,
        "memory_mb": 25,
        "persistent": False,
    }
    assert mini["price"]["cents"] == 0 and mini["addon_service"]["name"] == "kapal-redis"
    # By Heroku's name or the service id too; plan ids are stable.
    by_alias = client.get("/addon-services/heroku-redis/plans").json()
    service_id = mini["addon_service"]["id"]
    assert client.get(f"/addon-services/{service_id}/plans").json() == by_alias == plans


def test_an_unknown_service_has_no_plans(client: TestClient) -> None:
    missing = client.get("/addon-services/kapal-mongodb/plans")
    assert missing.status_code == 404 and missing.json()["id"] == "not_found"
