"""What the router reads and writes in the store, on both databases: the page URLs of each
app's current release, and request metrics added up per worker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from kapal.domain.metrics import MinuteCounts, bucket
from kapal.entrypoints.router_store import RequestMetricsRecorder, RouterStore
from kapal.store.db import Store
from kapal.store.models import App, Release, RouterMetric, User, now


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/k.db"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = Store.open(url)
    request.addfinalizer(opened.engine.dispose)
    return opened


def add_app(store: Store, name: str, *releases: tuple[str, dict[str, str]]) -> str:
    with store.session() as s:
        owner = s.scalar(select(User))
        if owner is None:
            owner = User(email="owner@example.com", password_hash="x")
            s.add(owner)
            s.flush()
        app = App(name=name, owner_id=owner.id)
        s.add(app)
        s.flush()
        for version, (status, config) in enumerate(releases, 1):
            s.add(
                Release(
                    app_id=app.id, version=version, description="d", status=status, config=config
                )
            )
        return app.id


def test_the_snapshot_carries_the_current_releases_page_urls(store: Store) -> None:
    error = "https://pages.example.com/error.html?app=a&x=\"'<>"
    maintenance = "http://pages.example.com/down.html"
    add_app(
        store,
        "custom",
        ("succeeded", {"ERROR_PAGE_URL": "https://old.example.com/"}),
        ("succeeded", {"ERROR_PAGE_URL": error, "MAINTENANCE_PAGE_URL": maintenance, "A": "1"}),
        ("pending", {"ERROR_PAGE_URL": "https://next.example.com/"}),  # not live yet
        ("failed", {}),
    )
    add_app(store, "plain", ("succeeded", {"A": "1"}))
    add_app(store, "bad", ("succeeded", {"ERROR_PAGE_URL": "javascript:alert(1)"}))
    add_app(store, "none")

    router = RouterStore(store.url)
    apps = router.route_table().apps
    router.close()

    assert (apps["custom"].error_page_url, apps["custom"].maintenance_page_url) == (
        error,
        maintenance,
    )
    for name in ("plain", "bad", "none"):
        assert (apps[name].error_page_url, apps[name].maintenance_page_url) == ("", "")


def test_metrics_rows_add_up_per_worker(store: Store) -> None:
    app_id = add_app(store, "demo")
    minute = now().replace(second=0, microsecond=0)
    router = RouterStore(store.url)
    recorder = RequestMetricsRecorder(router.db, "4242")

    def counts(ms: float, n: int) -> MinuteCounts:
        item = MinuteCounts(app_id, minute, requests=n)
        item.status[1] = n
        item.histogram[bucket(ms)] = n
        return item

    recorder([counts(5, 2), MinuteCounts("no-such-app", minute, requests=1)])
    recorder([counts(5, 1), MinuteCounts(app_id, minute - timedelta(days=8), requests=1)])
    RequestMetricsRecorder(router.db, "4243")([counts(50, 3)])
    router.close()
    with store.session() as s:
        stored = s.scalars(select(RouterMetric)).all()
    # The week-old row is gone: the second recorder's first write prunes.
    assert sorted((r.worker, r.minute) for r in stored) == [("4242", minute), ("4243", minute)]
    rows = {r.worker: r for r in stored}
    mine = rows["4242"]
    assert (mine.requests, mine.status_2xx, mine.minute) == (3, 3, minute)
    assert mine.histogram[bucket(5)] == 3 and sum(mine.histogram) == 3
    assert rows["4243"].histogram[bucket(50)] == 3
