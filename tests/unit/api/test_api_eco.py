"""Eco dyno hours through the store and the API: the agent adds usage, the router records
requests, both read what they need (sleep, H82), and the API serves Heroku's get-quota and
the app's process tier."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.unit.api.test_api import signup

from kapal.api.app import create_api
from kapal.domain.eco import month_of
from kapal.entrypoints.agent_store import AgentStore
from kapal.entrypoints.router_store import RouterStore
from kapal.runtime.state import DynoRow
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import App, AppActivity, Formation, Release, Slug

QUOTA = "/accounts/~/actions/get-quota"


def _app(ctx: Context, client: TestClient, auth: dict[str, str], name: str) -> str:
    assert client.post("/apps", json={"name": name}, headers=auth).status_code == 201
    with ctx.store.session() as s:
        app_id: str = s.scalars(select(App.id).where(App.name == name)).one()
        slug = Slug(app_id=app_id, checksum="SHA256:0", size=1, process_types={"web": "x"})
        s.add(slug)
        s.flush()
        latest = s.scalar(select(func.max(Release.version)).where(Release.app_id == app_id))
        version = (latest or 0) + 1
        s.add(Release(app_id=app_id, version=version, description="d", slug_id=slug.id))
        s.add(Formation(app_id=app_id, type="web", quantity=1))
    return app_id


def test_usage_is_added_per_app_and_month_and_served_as_herokus_get_quota(ctx: Context) -> None:
    with TestClient(create_api(ctx)) as client:
        auth = signup(client)
        app_id = _app(ctx, client, auth, "sleepy")
        agent = AgentStore(ctx.store.url)
        month = month_of(time.time())
        agent.read()  # learns the apps' owners
        agent.add_eco_usage({(app_id, month): 3000.4, (app_id, "2020-01"): 99.0})
        agent.add_eco_usage({(app_id, month): 600.0, ("no-such-app", month): 50.0})

        quota = client.get(QUOTA, headers=auth).json()
        assert quota == {
            "account_quota": 3_600_000,
            "quota_used": 3600,
            "apps": [{"app_uuid": app_id, "quota_used": 3600}],
        }
        me = client.get("/account", headers=auth).json()
        assert client.get(f"/accounts/{me['id']}/actions/get-quota", headers=auth).json() == quota
        stranger = signup(client, "other@example.com")
        assert client.get(f"/accounts/{me['id']}/actions/get-quota", headers=stranger).json()[
            "id"
        ] == ("not_found")
        assert client.get(QUOTA).status_code == 401
        agent.close()


def test_the_process_tier_follows_the_formations_sizes(ctx: Context) -> None:
    with TestClient(create_api(ctx)) as client:
        auth = signup(client)
        _app(ctx, client, auth, "tiers")
        assert client.get("/apps/tiers", headers=auth).json()["process_tier"] == "eco"
        client.patch("/apps/tiers/formation/web", json={"size": "standard-1x"}, headers=auth)
        assert client.get("/apps/tiers", headers=auth).json()["process_tier"] == "production"


def test_the_agent_and_the_router_read_requests_sleep_and_the_quota(ctx: Context) -> None:
    with TestClient(create_api(ctx)) as client:
        auth = signup(client)
        app_id = _app(ctx, client, auth, "reader")
        router = RouterStore(ctx.store.url, eco_quota=3600.0)
        router.record_requests({app_id: 1000.0, "deleted-app": 5.0})
        router.record_requests({app_id: 900.0})  # an older batch never moves it back
        with ctx.store.session() as s:
            assert s.scalars(select(AppActivity.app_id)).all() == [app_id]

        agent = AgentStore(ctx.store.url, eco_quota=3600.0)
        app = agent.read().apps[app_id]
        assert (app.last_request_at, app.eco_exhausted) == (1000.0, False)
        agent.write_dynos([DynoRow(app_id, "web.1", "web", "x", "eco", 1, "idle", None, None, 5.0)])
        route = router.route_table().apps["reader"]
        assert (route.idle, route.eco_exhausted, route.up) == (1, False, ())

        agent.add_eco_usage({(app_id, month_of(time.time())): 3600.0})
        assert agent.read().apps[app_id].eco_exhausted
        assert router.route_table().apps["reader"].eco_exhausted
        unlimited = RouterStore(ctx.store.url)
        assert not unlimited.route_table().apps["reader"].eco_exhausted  # no quota
        unlimited.close()
        # A zero quota: no eco dyno hours at all, even before any use.
        assert AgentStore(ctx.store.url, eco_quota=0.0).read().apps[app_id].eco_exhausted
        # Listed by the API as Heroku lists a sleeping dyno.
        dynos = client.get("/apps/reader/dynos", headers=auth).json()
        assert [(d["name"], d["state"]) for d in dynos] == [("web.1", "idle")]
        agent.close()
        router.close()


def test_scaling_an_eco_app_warns_when_its_hours_are_nearly_or_all_used(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/k.db", eco_quota_hours=10.0
    )
    ctx = Context.create(settings)
    with TestClient(create_api(ctx)) as client:
        auth = signup(client)
        app_id = _app(ctx, client, auth, "thrifty")
        agent = AgentStore(ctx.store.url)
        agent.read()
        month = month_of(time.time())

        def scale(size: str = "eco") -> str | None:
            body = {"updates": [{"type": "web", "quantity": "1", "size": size}]}
            response = client.patch("/apps/thrifty/formation", json=body, headers=auth)
            assert response.status_code == 200
            return response.headers.get("Warning-Message")

        agent.add_eco_usage({(app_id, month): 8 * 3600.0})  # 2 of 10 hours left
        assert scale() is None
        agent.add_eco_usage({(app_id, month): 1.5 * 3600.0})  # half an hour left
        assert scale() == (
            "Your eco dyno hours are nearly used up: 0h 30m left this month. "
            "Then your eco apps sleep until the month turns."
        )
        assert scale("basic") is None  # not an eco app any more
        agent.add_eco_usage({(app_id, month): 3600.0})
        assert "are used up this month" in (scale() or "")
        agent.close()
    ctx.close()
