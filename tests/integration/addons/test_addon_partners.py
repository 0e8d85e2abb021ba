"""Third-party add-ons through Heroku's Add-on Partner API, over the real API, against a small
provider written in the tests (tests/integration/addons/partner_provider.py)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.integration.addons.partner_provider import (
    PASSWORD,
    PATH,
    PROVIDER_ID,
    Provider,
    running_provider,
)

from kapal.domain.errors import Forbidden
from kapal.services import addon_providers
from kapal.services.apps import create_app
from kapal.services.auth import login, signup
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import Addon, App, User

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 0.5  # how long Kapal waits for the provider here (25 s in production)
CREDENTIALS = base64.b64encode(f"{PROVIDER_ID}:{PASSWORD}".encode()).decode()
ACCEPT = "application/vnd.heroku+json; version=3"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    """No PostgreSQL needed: only the provider provisions here."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path}/state/k.db",
        partner_timeout=TIMEOUT,
    )
    context = Context.create(settings)
    yield context
    context.close()


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as provider:
        yield provider


def client(api_url: str, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
    return httpx.Client(base_url=api_url, headers=headers, timeout=60)


@pytest.fixture
def operator(api_url: str, token: str) -> Iterator[httpx.Client]:
    """The account created first: the operator while KAPAL_OPERATORS is unset."""
    with client(api_url, token) as http:
        yield http


@pytest.fixture
def second_user(ctx: Context, user: User) -> User:
    return signup(ctx, "dev@example.com", "password123")[0]


@pytest.fixture
def developer(api_url: str, ctx: Context, second_user: User) -> Iterator[httpx.Client]:
    """Someone who is not an operator, with an app of their own."""
    create_app(ctx, second_user, "dev-app")
    create_app(ctx, second_user, "dev-other")
    with client(api_url, login(ctx, "dev@example.com", "password123")) as http:
        yield http


def manifest(provider: Provider, **changes: Any) -> dict[str, Any]:
    return {
        "id": PROVIDER_ID,
        "name": "Acme Search",
        "base_url": provider.base_url,
        "password": PASSWORD,
        "plans": [{"name": "test", "description": "For trying it"}, {"name": "pro"}],
        "config_vars": ["ACME_URL", "ACME_TOKEN"],
        **changes,
    }


@pytest.fixture
def registered(operator: httpx.Client, provider: Provider) -> Provider:
    response = operator.post("/addon-providers", json=manifest(provider))
    assert response.status_code == 201, response.text
    return provider


def assert_no_password(response: httpx.Response) -> None:
    assert PASSWORD not in response.text
    assert CREDENTIALS not in response.text
    assert "password" not in response.text


def config(http: httpx.Client, app: str) -> dict[str, str]:
    response = http.get(f"/apps/{app}/config-vars")
    assert response.status_code == 200, response.text
    return dict(response.json())


def addon_rows(ctx: Context) -> list[Addon]:
    with ctx.store.session() as s:
        return list(s.scalars(select(Addon)))


# --- registering ------------------------------------------------------------------------------


def test_operators_register_and_change_providers_others_may_not(
    operator: httpx.Client, developer: httpx.Client, provider: Provider
) -> None:
    refused = developer.post("/addon-providers", json=manifest(provider))
    assert (refused.status_code, refused.json()["id"]) == (403, "forbidden")
    assert "KAPAL_OPERATORS" in refused.json()["message"]
    assert_no_password(refused)

    created = operator.post("/addon-providers", json=manifest(provider))
    assert created.status_code == 201, created.text
    assert_no_password(created)
    body = created.json()
    assert body["id"] == PROVIDER_ID
    assert body["name"] == "Acme Search"
    assert body["base_url"] == provider.base_url
    assert body["plans"] == [
        {"name": "test", "description": "For trying it"},
        {"name": "pro", "description": ""},
    ]
    assert body["config_vars"] == ["ACME_URL", "ACME_TOKEN"]

    again = operator.post("/addon-providers", json=manifest(provider))
    assert (again.status_code, again.json()["id"]) == (409, "conflict")
    assert_no_password(again)

    for path in ("/addon-providers", f"/addon-providers/{PROVIDER_ID}"):
        assert developer.get(path).status_code == 403
        listed = operator.get(path)
        assert listed.status_code == 200
        assert_no_password(listed)
    patch = {"name": "Acme", "password": "another-password-1"}
    assert developer.patch(f"/addon-providers/{PROVIDER_ID}", json=patch).status_code == 403
    changed = operator.patch(f"/addon-providers/{PROVIDER_ID}", json=patch)
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Acme"
    assert "another-password-1" not in changed.text
    assert_no_password(changed)
    assert developer.delete(f"/addon-providers/{PROVIDER_ID}").status_code == 403
    removed = operator.delete(f"/addon-providers/{PROVIDER_ID}")
    assert removed.status_code == 200
    assert "another-password-1" not in removed.text
    assert operator.get("/addon-providers").json() == []
    assert operator.get(f"/addon-providers/{PROVIDER_ID}").status_code == 404


def test_kapal_operators_names_the_operators(ctx: Context, user: User, second_user: User) -> None:
    named = Context(replace(ctx.settings, operators=("dev@example.com",)), ctx.store, ctx.log)
    with named.store.session() as s:
        assert addon_providers.is_operator(named, s, second_user)
        assert not addon_providers.is_operator(named, s, user)
        # Unset: the account created first.
        assert addon_providers.is_operator(ctx, s, user)
        assert not addon_providers.is_operator(ctx, s, second_user)
    with pytest.raises(Forbidden):
        addon_providers.list_providers(named, user)
    assert addon_providers.list_providers(named, second_user) == []


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"id": "Acme"}, "Provider id 'Acme' is invalid"),
        ({"id": "ac"}, "Provider id 'ac' is invalid"),
        ({"id": "heroku-postgresql"}, "built-in add-on service"),
        ({"id": "kapal-redis"}, "built-in add-on service"),
        ({"base_url": "http://acme.example.com/heroku/resources"}, "https://"),
        ({"base_url": "ftp://127.0.0.1/x"}, "https://"),
        ({"base_url": "https://acme:pw@acme.example.com/"}, "must not contain credentials"),
        ({"base_url": "https://acme.example.com/?x=1"}, "query"),
        ({"plans": []}, "at least one plan"),
        ({"plans": [{"name": "Test Plan"}]}, "Plan name 'Test Plan' is invalid"),
        ({"plans": [{"name": "a"}, {"name": "a"}]}, "listed twice"),
        ({"config_vars": ["acme_url"]}, "Config var 'acme_url' is invalid"),
        ({"config_vars": ["URL"]}, "Config var 'URL' is invalid"),
        ({"config_vars": ["ACME_URL", "OTHER_URL"]}, "share one prefix"),
        ({"password": "short"}, "password must be 8 to 200"),
        ({"password": 12345678}, "Invalid parameter password"),
        ({"plans": "test"}, "Invalid parameter plans"),
        ({"secret": "x"}, "Invalid parameter secret"),
    ],
)
def test_a_bad_manifest_is_invalid_params(
    operator: httpx.Client, provider: Provider, changes: dict[str, Any], says: str
) -> None:
    response = operator.post("/addon-providers", json=manifest(provider, **changes))
    assert (response.status_code, response.json()["id"]) == (422, "invalid_params"), response.text
    assert says in response.json()["message"]
    assert PASSWORD not in response.text
    assert operator.get("/addon-providers").json() == []


def test_an_unknown_provider_is_not_found(operator: httpx.Client) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = operator.request(method, "/addon-providers/nope", json={})
        assert (response.status_code, response.json()["id"]) == (404, "not_found")


# --- the catalog ------------------------------------------------------------------------------


def test_everyone_sees_the_provider_among_the_services(
    registered: Provider, developer: httpx.Client
) -> None:
    services = developer.get("/addon-services").json()
    assert [s["name"] for s in services][-1] == PROVIDER_ID
    assert services[-1]["human_name"] == "Acme Search"
    service = developer.get(f"/addon-services/{PROVIDER_ID}").json()
    assert developer.get(f"/addon-services/{service['id']}").json()["name"] == PROVIDER_ID
    plans = developer.get(f"/addon-services/{PROVIDER_ID}/plans").json()
    assert [(p["name"], p["description"], p["default"]) for p in plans] == [
        ("acme-search:test", "For trying it", True),
        ("acme-search:pro", "", False),
    ]
    assert plans[0]["limits"] is None
    for response in (
        developer.get("/addon-services"),
        developer.get(f"/addon-services/{PROVIDER_ID}/plans"),
    ):
        assert_no_password(response)


# --- add-ons of the provider ------------------------------------------------------------------


def test_create_attach_upgrade_and_destroy_through_the_provider(
    registered: Provider, developer: httpx.Client, ctx: Context
) -> None:
    provider = registered
    created = developer.post(
        "/apps/dev-app/addons",
        json={"plan": {"name": "acme-search:test"}, "config": {"region": "eu"}},
    )
    assert created.status_code == 201, created.text
    assert_no_password(created)
    addon = created.json()
    assert addon["name"].startswith("acme-search-")
    assert addon["addon_service"]["name"] == PROVIDER_ID
    assert addon["plan"]["name"] == "acme-search:test"
    assert addon["state"] == "provisioned"
    assert addon["config_vars"] == ["ACME_URL", "ACME_TOKEN"]
    assert addon["provider_id"] == "acme-1"
    assert addon["provision_message"] == "Acme is ready."

    (post,) = provider.sent("POST")
    assert post.path == PATH
    assert post.headers["authorization"] == f"Basic {CREDENTIALS}"
    assert post.headers["content-type"] == "application/json"
    assert post.headers["accept"] == "application/vnd.heroku-addons+json; version=3"
    assert post.body == {
        "uuid": addon["id"],
        "name": addon["name"],
        "plan": "test",
        "region": "local",
        "callback_url": f"http://localhost:5000/addons/{addon['id']}",
        "options": {"region": "eu"},
        "log_drain_token": f"d.{addon['id']}",
    }
    assert config(developer, "dev-app") == {
        "ACME_URL": f"http://acme.test/{addon['id']}",
        "ACME_TOKEN": "t0k",
    }
    releases = developer.get("/apps/dev-app/releases").json()
    assert releases[-1]["description"] == f"Attach ACME (@ref:{addon['name']})"

    # Another attachment name replaces the prefix, as on Heroku: SEARCH_URL, SEARCH_TOKEN.
    attached = developer.post(
        "/addon-attachments", json={"addon": addon["name"], "app": "dev-other", "name": "SEARCH"}
    )
    assert attached.status_code == 201, attached.text
    assert attached.json()["config_vars"] == ["SEARCH_URL", "SEARCH_TOKEN"]
    assert config(developer, "dev-other") == {
        "SEARCH_URL": f"http://acme.test/{addon['id']}",
        "SEARCH_TOKEN": "t0k",
    }

    upgraded = developer.patch(
        f"/apps/dev-app/addons/{addon['name']}", json={"plan": {"name": "acme-search:pro"}}
    )
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["plan"]["name"] == "acme-search:pro"
    assert upgraded.json()["provision_message"] == "moved"
    (put,) = provider.sent("PUT")
    assert (put.path, put.body) == (f"{PATH}/acme-1", {"plan": "pro"})
    assert put.headers["authorization"] == f"Basic {CREDENTIALS}"
    # The provider's new config reaches every attached app, without the vars it dropped.
    assert config(developer, "dev-app") == {"ACME_URL": "http://acme.test/pro"}
    assert config(developer, "dev-other") == {"SEARCH_URL": "http://acme.test/pro"}
    last = developer.get("/apps/dev-other/releases").json()[-1]
    assert last["description"] == f"Update SEARCH (@ref:{addon['name']})"
    same = developer.patch(f"/apps/dev-app/addons/{addon['name']}", json={"plan": "pro"})
    assert same.status_code == 200 and len(provider.sent("PUT")) == 1

    removing = developer.delete(f"/addon-providers/{PROVIDER_ID}")
    assert removing.status_code == 403

    destroyed = developer.delete(f"/apps/dev-app/addons/{addon['id']}")
    assert destroyed.status_code == 200, destroyed.text
    assert destroyed.json()["state"] == "deprovisioned"
    (delete,) = provider.sent("DELETE")
    assert delete.path == f"{PATH}/acme-1"
    assert delete.headers["authorization"] == f"Basic {CREDENTIALS}"
    assert config(developer, "dev-app") == {}
    assert config(developer, "dev-other") == {}
    assert addon_rows(ctx) == []


def test_a_provider_with_add_ons_cannot_be_removed(
    registered: Provider, operator: httpx.Client, developer: httpx.Client
) -> None:
    addon = developer.post("/apps/dev-app/addons", json={"plan": "acme-search"}).json()
    assert addon["plan"]["name"] == "acme-search:test"  # the first plan is the default
    refused = operator.delete(f"/addon-providers/{PROVIDER_ID}")
    assert (refused.status_code, refused.json()["id"]) == (409, "conflict")
    assert "destroy them first" in refused.json()["message"]
    dropping = operator.patch(f"/addon-providers/{PROVIDER_ID}", json={"plans": [{"name": "pro"}]})
    assert dropping.status_code == 409
    assert "test" in dropping.json()["message"]
    assert developer.delete(f"/apps/dev-app/addons/{addon['id']}").status_code == 200
    assert operator.delete(f"/addon-providers/{PROVIDER_ID}").status_code == 200


@pytest.mark.parametrize(
    ("mode", "says", "cleaned_up"),
    [
        ("error", "refused to provision (HTTP 500): the index is on fire", False),
        ("slow", f"did not answer within {TIMEOUT:g} s", False),
        ("garbage", "answered HTTP 200 with something that is not a JSON object", False),
        ("no-id", "answered without an id", False),
        ("bad-config", "config that is not an object of config var names to strings", True),
        ("accepted", "202 Accepted", True),
    ],
)
def test_a_failing_provider_leaves_nothing_behind(
    registered: Provider,
    developer: httpx.Client,
    ctx: Context,
    mode: str,
    says: str,
    cleaned_up: bool,
) -> None:
    registered.mode = mode
    response = developer.post("/apps/dev-app/addons", json={"plan": "acme-search:test"})
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["id"] == "service_unavailable"
    assert body["message"].startswith("Could not provision acme-search-")
    assert says in body["message"]
    assert_no_password(response)
    assert addon_rows(ctx) == []
    assert config(developer, "dev-app") == {}
    assert developer.get("/apps/dev-app/addons").json() == []
    # What the provider said it made is removed again.
    deletes = [r.path for r in registered.sent("DELETE")]
    assert deletes == ([f"{PATH}/acme-1"] if cleaned_up else [])


def test_a_wrong_password_is_a_clear_error(
    registered: Provider, operator: httpx.Client, developer: httpx.Client
) -> None:
    operator.patch(f"/addon-providers/{PROVIDER_ID}", json={"password": "not-the-password"})
    response = developer.post("/apps/dev-app/addons", json={"plan": "acme-search:test"})
    assert response.status_code == 503
    assert "refused to provision (HTTP 401): bad credentials" in response.json()["message"]
    assert "not-the-password" not in response.text


def test_an_unreachable_provider_is_a_clear_error(
    operator: httpx.Client, developer: httpx.Client
) -> None:
    with running_provider() as gone:
        base_url = gone.base_url
    operator.post("/addon-providers", json={**manifest(gone), "base_url": base_url})
    response = developer.post("/apps/dev-app/addons", json={"plan": "acme-search:test"})
    assert response.status_code == 503
    assert "could not be reached" in response.json()["message"]
    assert_no_password(response)


def test_kapal_services_cannot_change_plans(
    developer: httpx.Client, ctx: Context, second_user: User
) -> None:
    with ctx.store.session() as s:
        app = s.scalar(select(App).where(App.name == "dev-app"))
        assert app is not None
        s.add(
            Addon(
                name="postgresql-test-1",
                app_id=app.id,
                service="kapal-postgresql",
                plan="essential-0",
                state="provisioned",
                config={"URL": "postgres://x"},
            )
        )
    response = developer.patch(
        "/apps/dev-app/addons/postgresql-test-1", json={"plan": "standard-0"}
    )
    assert (response.status_code, response.json()["id"]) == (422, "invalid_params")
    assert "cannot change plans" in response.json()["message"]
    other = developer.patch(
        "/apps/dev-app/addons/postgresql-test-1", json={"plan": "kapal-redis:mini"}
    )
    assert "can only change to another plan of kapal-postgresql" in other.json()["message"]


def test_operations_never_log_the_password(
    registered: Provider,
    operator: httpx.Client,
    developer: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    addon = developer.post("/apps/dev-app/addons", json={"plan": "acme-search:test"}).json()
    developer.patch(f"/apps/dev-app/addons/{addon['id']}", json={"plan": "pro"})
    developer.delete(f"/apps/dev-app/addons/{addon['id']}")
    registered.mode = "error"
    developer.post("/apps/dev-app/addons", json={"plan": "acme-search:test"})
    operator.patch(f"/addon-providers/{PROVIDER_ID}", json={"password": "rotated-password"})
    operator.post("/addon-providers", json=manifest(registered, id="acme-two"))
    assert "provisioned add-on" in caplog.text  # the provider calls were logged
    for secret in (PASSWORD, CREDENTIALS, "rotated-password"):
        assert secret not in caplog.text
