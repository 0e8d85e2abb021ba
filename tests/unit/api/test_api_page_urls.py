"""ERROR_PAGE_URL and MAINTENANCE_PAGE_URL are config vars the router must be able to show."""

from fastapi.testclient import TestClient
from tests.unit.api.test_api import signup

CONFIG = "/apps/my-app/config-vars"


def test_page_urls_are_checked_when_set(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    bad = client.patch(CONFIG, json={"ERROR_PAGE_URL": "javascript:alert(1)"}, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["id"] == "invalid_params"
    assert bad.json()["message"].startswith(
        "ERROR_PAGE_URL must be an http:// or https:// URL with a host"
    )
    good = {
        "ERROR_PAGE_URL": "https://pages.example.com/error.html",
        "MAINTENANCE_PAGE_URL": "https://pages.example.com/maintenance.html",
    }
    assert client.patch(CONFIG, json=good, headers=auth).json() == good
    assert client.patch(CONFIG, json={"ERROR_PAGE_URL": None}, headers=auth).status_code == 200
    # Other config vars may hold anything.
    assert client.patch(CONFIG, json={"OTHER_URL": "not a url"}, headers=auth).status_code == 200
