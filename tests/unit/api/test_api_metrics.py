"""/apps/{app}/metrics/memory: what the agent sampled, and /apps/{app}/metrics: what the
router counted, to the app's owner only."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.unit.api.test_api import signup

from kapal.api.app import create_api
from kapal.domain.metrics import MinuteCounts, bucket
from kapal.entrypoints.agent_store import AgentStore
from kapal.entrypoints.router_store import RequestMetricsRecorder
from kapal.runtime.state import MemoryReading
from kapal.services.context import Context
from kapal.store.dbapi import Database
from kapal.store.models import App, MemorySample, RouterMetric, now

PATH = "/apps/my-app/metrics/memory"
PATH_REQUESTS = "/apps/my-app/metrics"
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


def _counts(app_id: str, minute: datetime, *times_ms: float, status: int = 200) -> MinuteCounts:
    counts = MinuteCounts(app_id, minute)
    for ms in times_ms:
        counts.requests += 1
        counts.status[status // 100 - 1] += 1
        counts.histogram[bucket(ms)] += 1
    return counts


def test_request_metrics_add_up_every_router_worker_and_flush(ctx: Context) -> None:
    with TestClient(create_api(ctx)) as client:
        auth = signup(client)
        client.post("/apps", json={"name": "my-app"}, headers=auth)
        with ctx.store.session() as s:
            app_id = s.scalars(select(App.id).where(App.name == "my-app")).one()
        minute = now().replace(second=0, microsecond=0) - timedelta(minutes=2)
        later = minute + timedelta(minutes=1)
        db = Database(ctx.store.url)
        one = RequestMetricsRecorder(db, "1001")
        two = RequestMetricsRecorder(db, "1002")
        one([_counts(app_id, minute, *[10] * 90), _counts("gone-app", minute, 5)])
        one([_counts(app_id, minute, *[100] * 5, status=503)])  # a later flush adds up
        two([_counts(app_id, minute, *[100] * 4, 1000, status=404)])
        two([_counts(app_id, later, 2, status=101)])
        # Two days old: outside the default hour, forgotten after a week.
        two([_counts(app_id, minute - timedelta(days=2), 7)])

        points = client.get(PATH_REQUESTS, headers=auth).json()
        assert [p["minute"] for p in points] == [ts(minute), ts(later)]
        first = points[0]
        assert first["requests"] == 100
        assert first["status"] == {"1xx": 0, "2xx": 90, "3xx": 0, "4xx": 5, "5xx": 5}
        assert 8 < first["p50"] <= 10
        assert 80 < first["p95"] <= 100
        assert first["p99"] == pytest.approx(100)
        assert points[1]["requests"] == 1 and points[1]["status"]["1xx"] == 1
        days = client.get(PATH_REQUESTS, params={"hours": 72}, headers=auth).json()
        assert len(days) == 3
        with ctx.store.session() as s:
            rows = s.scalars(select(RouterMetric).order_by(RouterMetric.worker)).all()
            assert {row.worker for row in rows} == {"1001", "1002"}
            assert all(row.app_id == app_id for row in rows)

        ticks = iter([0.0, 1.0])
        pruning = RequestMetricsRecorder(
            db, "1003", keep=timedelta(days=1), clock=lambda: next(ticks)
        )
        pruning([_counts(app_id, later, 3)])
        db.close()
        assert len(client.get(PATH_REQUESTS, params={"hours": 72}, headers=auth).json()) == 2

        assert client.get(PATH_REQUESTS, params={"hours": 169}, headers=auth).status_code == 422
        stranger = signup(client, "other@example.com")
        assert client.get(PATH_REQUESTS, headers=stranger).status_code in (403, 404)
        assert client.get(PATH_REQUESTS).status_code == 401
        assert client.get("/apps/nope/metrics", headers=auth).status_code == 404


def test_no_requests_no_points(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    assert client.get(PATH_REQUESTS, headers=auth).json() == []


def ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
