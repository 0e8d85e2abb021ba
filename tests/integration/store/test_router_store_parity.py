"""The router's store (plain SQL over the DB-API) and the ORM agree: the router reads what the
API and the agent wrote through the ORM, and the ORM (so the API) reads what the router wrote,
in the same formats, on SQLite and on the machine's PostgreSQL (127.0.0.1:5432, trust auth; a
scratch database per test)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from kapal.domain.eco import month_of
from kapal.domain.metrics import MinuteCounts, bucket
from kapal.entrypoints.router_store import PRUNE_EVERY, RequestMetricsRecorder, RouterStore
from kapal.router import AppRoute, Certificate, UpDyno
from kapal.router.metrics import MetricsFlusher, RequestCounter
from kapal.store.db import Store
from kapal.store.dbapi import Database, Transaction
from kapal.store.models import (
    App,
    AppActivity,
    Domain,
    Dyno,
    EcoUsage,
    Formation,
    Release,
    RouterMetric,
    Slug,
    SniEndpoint,
    User,
    now,
)

ERROR_PAGE = "https://pages.example.com/error.html?app=a&x=\"'<>ü"
MAINTENANCE_PAGE = "http://pages.example.com/down.html"
# Other config vars stay unread; non-ASCII and quotes check the JSON is read, not matched.
CONFIG = {"GREETING": "grüß dich", "QUOTE": 'say "hi"', "DATABASE_URL": "postgres://secret"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/k.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@dataclass
class Both:
    """The ORM's store and the router's, on one database, with one account written by the ORM."""

    orm: Store
    router: RouterStore
    owner_id: str

    def app(self, name: str, owner_id: str | None = None, **columns: object) -> str:
        with self.orm.session() as s:
            app = App(name=name, owner_id=owner_id or self.owner_id, **columns)
            s.add(app)
            s.flush()
            return app.id

    def user(self, email: str) -> str:
        with self.orm.session() as s:
            user = User(email=email, password_hash="x")
            s.add(user)
            s.flush()
            return user.id

    def metrics(self) -> dict[tuple[str, str, datetime], RouterMetric]:
        with self.orm.session() as s:
            return {(r.worker, r.app_id, r.minute): r for r in s.scalars(select(RouterMetric))}


@pytest.fixture
def both(database_url: str) -> Iterator[Both]:
    orm = Store.open(database_url)
    with orm.session() as s:
        user = User(email="dev@example.com", password_hash="x")
        s.add(user)
        s.flush()
        owner_id = user.id
    router = RouterStore(orm.url)
    try:
        yield Both(orm, router, owner_id)
    finally:
        router.close()
        orm.engine.dispose()


def deploy(both: Both, app_id: str, *releases: tuple[str, bool, dict[str, str]]) -> None:
    """Releases v1, v2... of (status, with a slug, config)."""
    with both.orm.session() as s:
        slug = Slug(app_id=app_id, checksum="SHA256:ab", size=1, process_types={"web": "x"})
        s.add(slug)
        s.flush()
        for version, (status, with_slug, config) in enumerate(releases, 1):
            s.add(
                Release(
                    app_id=app_id,
                    version=version,
                    description=f"v{version}",
                    slug_id=slug.id if with_slug else None,
                    config=config,
                    status=status,
                )
            )


def web(
    both: Both, app_id: str, quantity: int, size: str, *dynos: tuple[str, str, int | None]
) -> None:
    with both.orm.session() as s:
        s.add(Formation(app_id=app_id, type="web", quantity=quantity, size=size))
        s.add(Formation(app_id=app_id, type="worker", quantity=1, size=size))
        for name, state, port in dynos:
            s.add(
                Dyno(
                    app_id=app_id,
                    name=name,
                    type=name.split(".")[0],
                    command="x",
                    release_version=1,
                    state=state,
                    port=port,
                )
            )


def test_the_route_table_reads_every_field_the_orm_wrote(both: Both) -> None:
    live = both.app("live")
    deploy(
        both,
        live,
        ("succeeded", True, {"ERROR_PAGE_URL": "https://old.example.com/"}),
        ("succeeded", False, {**CONFIG, "ERROR_PAGE_URL": ERROR_PAGE, "MAINTENANCE_PAGE_URL": ""}),
        ("failed", True, {"MAINTENANCE_PAGE_URL": "https://failed.example.com/"}),
        ("pending", True, {"ERROR_PAGE_URL": "https://next.example.com/"}),  # not live yet
    )
    web(
        both,
        live,
        5,
        "standard-1x",
        ("web.10", "up", 5010),
        ("web.2", "up", 5002),
        ("web.3", "up", None),  # no port yet: not routable
        ("web.4", "crashed", None),
        ("web.5", "starting", None),
        ("web.6", "idle", None),
        ("web.7", "idle", None),
        ("worker.1", "up", 6000),  # not a web dyno
    )
    resting = both.app("resting", maintenance=True)
    deploy(both, resting, ("succeeded", True, {"MAINTENANCE_PAGE_URL": MAINTENANCE_PAGE}))
    web(both, resting, 0, "eco")
    pending = both.app("pending")
    deploy(both, pending, ("pending", True, {}), ("succeeded", False, {"A": "1"}))
    unsafe = both.app("unsafe")
    deploy(both, unsafe, ("succeeded", True, {"ERROR_PAGE_URL": "javascript:alert(1)"}))
    blank = both.app("blank")

    table = both.router.route_table()

    assert table.apps == {
        "live": AppRoute(
            app_id=live,
            name="live",
            maintenance=False,
            deployed=True,  # v1 has a slug, though the current v2 has none
            web_quantity=5,
            up=(UpDyno("web.10", 5010), UpDyno("web.2", 5002)),  # ordered by name
            crashed=1,
            starting=1,
            idle=2,
            eco_exhausted=False,
            error_page_url=ERROR_PAGE,
            maintenance_page_url="",
        ),
        "resting": AppRoute(
            resting, "resting", maintenance=True, maintenance_page_url=MAINTENANCE_PAGE
        ),
        "pending": AppRoute(pending, "pending", deployed=False),
        "unsafe": AppRoute(unsafe, "unsafe"),
        "blank": AppRoute(blank, "blank", deployed=False),
    }
    assert (table.domains, table.certificates) == ({}, {})


def test_custom_domains_name_their_app_and_certificate_version(both: Both) -> None:
    live = both.app("live")
    other = both.app("other")
    with both.orm.session() as s:
        endpoint = SniEndpoint(
            app_id=live, name="tokyo-1", certificate_chain="CHAIN ü", private_key="KEY"
        )
        s.add(endpoint)
        s.flush()
        s.add(Domain(app_id=live, hostname="www.example.com", sni_endpoint_id=endpoint.id))
        s.add(Domain(app_id=live, hostname="*.example.com", sni_endpoint_id=endpoint.id))
        s.add(Domain(app_id=other, hostname="example.org"))
        endpoint_id = endpoint.id
    with both.orm.session() as s:
        stored = s.get_one(SniEndpoint, endpoint_id).updated_at

    table = both.router.route_table()

    assert table.domains == {
        "www.example.com": "live",
        "*.example.com": "live",
        "example.org": "other",
    }
    version = Certificate(endpoint_id, stored.isoformat())
    assert table.certificates == {"www.example.com": version, "*.example.com": version}
    assert both.router.certificate(endpoint_id) == ("CHAIN ü", "KEY")
    with pytest.raises(LookupError):
        both.router.certificate(str(uuid.uuid4()))

    # A renewal changes the version, so the router loads the new certificate.
    with both.orm.session() as s:
        s.get_one(SniEndpoint, endpoint_id).certificate_chain = "NEW"
    renewed = both.router.route_table().certificates["www.example.com"]
    assert renewed.endpoint_id == endpoint_id and renewed != version
    assert both.router.certificate(endpoint_id) == ("NEW", "KEY")


def test_eco_apps_of_an_account_past_its_quota_are_exhausted(both: Both) -> None:
    thrifty = both.user("thrifty@example.com")
    used_up = both.app("used-up")
    web(both, used_up, 1, "eco")
    paid = both.app("paid")  # same account, not eco
    web(both, paid, 1, "basic")
    stopped = both.app("stopped")  # eco, scaled to zero
    web(both, stopped, 0, "eco")
    frugal = both.app("frugal", owner_id=thrifty)
    web(both, frugal, 1, "eco")
    month = month_of(time.time())
    with both.orm.session() as s:
        s.add(EcoUsage(user_id=both.owner_id, app_id=used_up, month=month, seconds=60.0))
        # A deleted app's hours still count; another month's do not.
        s.add(EcoUsage(user_id=both.owner_id, app_id="deleted", month=month, seconds=40.0))
        s.add(EcoUsage(user_id=thrifty, app_id=frugal, month="2020-01", seconds=1e6))

    def exhausted(quota: float | None, clock: float = time.time()) -> set[str]:
        router = RouterStore(both.orm.url, eco_quota=quota, clock=lambda: clock)
        try:
            return {r.name for r in router.route_table().apps.values() if r.eco_exhausted}
        finally:
            router.close()

    assert exhausted(100.0) == {"used-up"}
    assert exhausted(100.5) == set()
    assert exhausted(None) == set()  # no limit
    assert exhausted(0.0) == {"used-up", "frugal"}  # no eco dyno hours at all
    assert exhausted(100.0, datetime(2020, 1, 15, tzinfo=UTC).timestamp()) == {"frugal"}


def test_last_requests_are_upserted_never_back_and_only_for_live_apps(both: Both) -> None:
    first = both.app("first")
    second = both.app("second")
    both.router.record_requests({})  # nothing to write
    both.router.record_requests({first: 2000.25, "deleted-meanwhile": 1.0})
    both.router.record_requests({first: 1000.0, second: 1500.5})  # first: older, kept
    both.router.record_requests({second: 3000.75})

    with both.orm.session() as s:
        stored = {a.app_id: a.last_request_at for a in s.scalars(select(AppActivity))}
    assert stored == {
        first: datetime.fromtimestamp(2000.25, UTC),
        second: datetime.fromtimestamp(3000.75, UTC),
    }


def counts(app_id: str, minute: datetime, *times_ms: float, status: int = 200) -> MinuteCounts:
    item = MinuteCounts(app_id, minute)
    for ms in times_ms:
        item.requests += 1
        item.status[status // 100 - 1] += 1
        item.histogram[bucket(ms)] += 1
    return item


def test_metrics_add_up_per_worker_and_app_and_minute(both: Both) -> None:
    app_id = both.app("demo")
    minute = now().replace(second=0, microsecond=0)
    earlier = minute - timedelta(minutes=1)
    one = RequestMetricsRecorder(both.router.db, "edge.4242")
    two = RequestMetricsRecorder(both.router.db, "edge.4243")

    one([counts(app_id, minute, 5, 5), counts("deleted-meanwhile", minute, 1)])
    # A later flush, and the same minute twice in one batch (counts put back after a failure).
    one([counts(app_id, minute, 5, status=503), counts(app_id, minute, 70_000, status=404)])
    one([counts(app_id, earlier, 20)])
    two([counts(app_id, minute, 50, 50, 50, status=301)])

    rows = both.metrics()
    assert sorted(rows) == [
        ("edge.4242", app_id, earlier),
        ("edge.4242", app_id, minute),
        ("edge.4243", app_id, minute),
    ]
    mine = rows["edge.4242", app_id, minute]
    status = [mine.status_1xx, mine.status_2xx, mine.status_3xx, mine.status_4xx, mine.status_5xx]
    assert (mine.requests, status) == (4, [0, 2, 0, 1, 1])
    expected = counts(app_id, minute, 5, 5, 5, 70_000).histogram
    assert mine.histogram == expected and len(mine.histogram) == len(expected)
    assert rows["edge.4242", app_id, earlier].histogram == counts(app_id, earlier, 20).histogram
    theirs = rows["edge.4243", app_id, minute]
    assert (theirs.requests, theirs.status_3xx, theirs.histogram[bucket(50)]) == (3, 3, 3)


def test_old_metrics_are_pruned_every_ten_minutes(both: Both) -> None:
    app_id = both.app("demo")
    minute = now().replace(second=0, microsecond=0)
    ticks = iter([0.0, PRUNE_EVERY - 1, PRUNE_EVERY])
    recorder = RequestMetricsRecorder(
        both.router.db, "edge.1", keep=timedelta(days=1), clock=lambda: next(ticks)
    )
    old = minute - timedelta(days=1, minutes=1)
    recorder([counts(app_id, old, 1)])  # pruned at once: older than a day
    assert both.metrics() == {}
    recorder([counts(app_id, old, 1), counts(app_id, minute, 1)])  # not pruned yet
    assert len(both.metrics()) == 2
    recorder([counts(app_id, minute, 1)])
    assert list(both.metrics()) == [("edge.1", app_id, minute)]
    assert both.metrics()["edge.1", app_id, minute].requests == 2


class FailingOnce(Database):
    """The store at a URL whose first write fails after its statements ran (at the commit)."""

    failed = False

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        with super().write() as tx:
            yield tx
            if not self.failed:
                self.failed = True
                raise ConnectionError("the store went away")


def test_a_failed_metrics_write_adds_nothing_and_the_counts_are_saved_later(both: Both) -> None:
    app_id = both.app("demo")
    minute = now().replace(second=0, microsecond=0)
    RequestMetricsRecorder(both.router.db, "edge.1")([counts(app_id, minute, 5)])
    db = FailingOnce(both.orm.url)
    counter = RequestCounter()
    flusher = MetricsFlusher(counter, RequestMetricsRecorder(db, "edge.1"))
    at = minute.timestamp() + 1
    counter.count(app_id, 200, 12.0, at)  # added to the stored row
    counter.count(app_id, 500, 30.0, at - 60)  # a new row

    async def flush() -> None:
        await flusher.flush()

    try:
        asyncio.run(flush())  # fails: rolled back, the counts kept
        assert [r.requests for r in both.metrics().values()] == [1]
        asyncio.run(flush())
    finally:
        db.close()
    rows = both.metrics()
    assert rows["edge.1", app_id, minute].requests == 2
    assert rows["edge.1", app_id, minute - timedelta(minutes=1)].status_5xx == 1


def test_the_router_writes_timestamps_and_json_as_the_orm_does(both: Both) -> None:
    """Same text formats on SQLite (what the ORM's reads and comparisons rely on)."""
    app_id = both.app("demo")
    both.router.record_requests({app_id: 2000.0})  # whole seconds: microseconds still written
    minute = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    recorder = RequestMetricsRecorder(both.router.db, "edge.1")
    recorder([counts(app_id, minute, 1)])
    recorder([counts(app_id, minute, 2)])  # found again by its minute, added to
    with both.orm.session() as s:  # and the ORM finds it by its minute
        found = s.scalar(select(RouterMetric).where(RouterMetric.minute == minute))
        assert found is not None and found.requests == 2
    if not both.router.db.sqlite:
        return  # PostgreSQL: `timestamp without time zone` and json either way; read back above
    path = both.orm.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        stamps = raw.execute(
            "SELECT last_request_at FROM app_activity UNION ALL SELECT minute FROM router_metrics"
        ).fetchall()
        (histogram,) = raw.execute("SELECT histogram FROM router_metrics").fetchone()
    raw.close()
    pattern = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
    assert all(pattern.fullmatch(stamp) for (stamp,) in stamps), stamps
    assert histogram == json.dumps(counts(app_id, minute, 1, 2).histogram)


def test_a_snapshot_never_waits_for_a_writer_and_deleted_apps_take_their_rows(
    both: Both,
) -> None:
    app_id = both.app("demo")
    both.router.record_requests({app_id: 1000.0})
    RequestMetricsRecorder(both.router.db, "edge.1")([counts(app_id, now(), 1)])
    with both.orm.session() as s:  # the write lock held (SQLite: BEGIN IMMEDIATE)
        s.execute(update(App).values(maintenance=True))
        assert not both.router.route_table().apps["demo"].maintenance
    assert both.router.route_table().apps["demo"].maintenance
    with both.orm.session() as s:
        s.execute(delete(App))
    assert both.router.route_table().apps == {}
    assert both.metrics() == {}
    with both.orm.session() as s:
        assert s.scalars(select(AppActivity)).all() == []
