"""Eco state in the store on SQLite and on the machine's PostgreSQL: the router's last requests
(an upsert that never moves back), the agent's eco usage, and what each reads back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from kapal.domain.eco import month_of
from kapal.entrypoints.agent_store import AgentStore
from kapal.entrypoints.router_store import RouterStore
from kapal.runtime.state import DynoRow
from kapal.store.db import Store
from kapal.store.eco import usage_by_app
from kapal.store.models import App, AppActivity, Formation, Release, Slug, User


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path}/k.db"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    opened = Store.open(url)
    yield opened
    opened.engine.dispose()


def test_requests_usage_and_quota_round_trip(store: Store) -> None:
    with store.session() as s:
        user = User(email="eco@example.com", password_hash="x")
        s.add(user)
        s.flush()
        app = App(name="eco", owner_id=user.id)
        s.add(app)
        s.flush()
        slug = Slug(app_id=app.id, checksum="SHA256:0", size=1, process_types={"web": "x"})
        s.add(slug)
        s.flush()
        s.add(Release(app_id=app.id, version=1, description="d", slug_id=slug.id))
        s.add(Formation(app_id=app.id, type="web", quantity=1))
        app_id, user_id = app.id, user.id

    router = RouterStore(store.url, eco_quota=100.0)
    router.record_requests({app_id: 2000.25, "gone": 1.0})
    router.record_requests({app_id: 1000.0})
    with store.session() as s:
        assert [a.app_id for a in s.scalars(select(AppActivity))] == [app_id]

    agent = AgentStore(store.url, eco_quota=100.0)
    try:
        desired = agent.read().apps[app_id]
        assert (desired.last_request_at, desired.eco_exhausted) == (2000.25, False)
        month = month_of(time.time())
        agent.add_eco_usage({(app_id, month): 60.5})
        agent.add_eco_usage({(app_id, month): 40.0, (app_id, "2020-01"): 7.0})
        with store.session() as s:
            assert usage_by_app(s, user_id, month) == {app_id: 100.5}
            assert usage_by_app(s, user_id, "2020-01") == {app_id: 7.0}
        assert agent.read().apps[app_id].eco_exhausted
        row = DynoRow(app_id, "web.1", "web", "x", "eco", 1, "idle", None, None, time.time())
        agent.write_dynos([row])
        route = router.route_table().apps["eco"]
        assert (route.idle, route.eco_exhausted) == (1, True)
        # A restarted agent finds the sleeping dyno as it left it.
        assert [(r.name, r.state) for r in agent.leftover_dynos(time.time())] == [("web.1", "idle")]
    finally:
        agent.close()
        router.close()
