"""/apps/{app}/metrics/memory: what the agent sampled, to the app's owner only."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.unit.api.test_api import signup

from kapal.api.app import create_api
from kapal.entrypoints.agent_store import AgentStore
from kapal.runtime.state import MemoryReading
from kapal.services.context import Context
from kapal.store.models import App, MemorySample, now

PATH = "/apps/my-app/metrics/memory"
MB = 1 << 20


def test_samples_are_recorded_listed_and_forgotten_after_a_day(ctx: Context) -> None:
    with TestClient(create_api(ctx)) as client:
        auth = signup(client)
        client.post("/apps", json={"name": "my-app"}, headers=auth)
        with ctx.store.session() as s:
            app_id = s.scalars(select(App.id).where(App.name == "my-app")).one()
        agent = AgentStore(ctx.store.url)
        keep = timedelta(hours=24)
        agent.record_memory([MemoryReading(app_id, "web.1", 300 * MB, 512 * MB)], keep)
        with ctx.store.session() as s:  # a day old: forgotten at the next recording
            s.execute(update(MemorySample).values(at=now() - timedelta(hours=25)))
        readings = [
            MemoryReading(app_id, "web.1", 100 * MB + MB // 2, 512 * MB),
            MemoryReading(app_id, "worker.1", 700 * MB, 512 * MB),
            MemoryReading("gone-app", "web.1", MB, 512 * MB),  # deleted meanwhile: skipped
        ]
        agent.record_memory(readings, keep)

        samples = client.get(PATH, headers=auth).json()
        assert [(x["dyno"], x["memory_mb"], x["quota_mb"]) for x in samples] == [
            ("web.1", 100.5, 512),
            ("worker.1", 700.0, 512),
        ]
        one = client.get(PATH, params={"dyno": "worker.1"}, headers=auth).json()
        assert [x["dyno"] for x in one] == ["worker.1"]
        assert client.get(PATH, params={"hours": 48}, headers=auth).status_code == 422

        stranger = signup(client, "other@example.com")
        assert client.get(PATH, headers=stranger).status_code in (403, 404)
        assert client.get(PATH).status_code == 401
