"""`RouterStore`: what the router reads from the store (the route snapshot, SNI certificates)
and writes to it (the apps' last requests, request metrics), in plain SQL over the DB-API
(kapal.store.dbapi), so that router processes never import SQLAlchemy.

It reads and writes the tables of kapal.store.models in the formats the ORM uses; the parity
tests (tests/integration/store/test_router_store_parity.py) check both against each other on
SQLite and PostgreSQL. The router and the store may not import each other, so this adapter
lives with the router's entry point.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from kapal.domain.eco import ECO, month_of
from kapal.domain.metrics import MinuteCounts
from kapal.domain.pageurls import ERROR_PAGE_URL, MAINTENANCE_PAGE_URL, usable_page_url
from kapal.router import AppRoute, Certificate, RouteTable, UpDyno
from kapal.store.dbapi import Database, Transaction, json_value, moment
from kapal.store.eco_quota import exhausted_owners

KEEP_ROUTER_METRICS = timedelta(days=7)
PRUNE_EVERY = 600.0  # seconds between deletions of router metrics older than that

# Two config vars of each app's current release (the newest succeeded one): only these are
# read, not the whole config. `config ->> 'KEY'` means the same on PostgreSQL's json and on
# SQLite (3.38 and later): the key's value as text, or NULL.
PAGE_URLS = """
SELECT r.app_id, r.config ->> ?, r.config ->> ?
FROM releases r
WHERE r.status = 'succeeded' AND r.version = (
    SELECT max(n.version) FROM releases n WHERE n.app_id = r.app_id AND n.status = 'succeeded'
)
"""


def _now() -> datetime:
    return datetime.now(UTC)  # kapal.store.models.now


class RouterStore:
    """The router's RouteSource (`route_table`), CertificateLoader (`certificate`) and the
    store half of its ActivitySink (`record_requests`), over the database at `url`."""

    def __init__(
        self, url: str, *, eco_quota: float | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = Database(url)
        # Eco dyno seconds per account per month; the eco apps of an account that used them
        # up are exhausted. None: no limit.
        self.eco_quota = eco_quota
        self.clock = clock

    def close(self) -> None:
        self.db.close()

    def route_table(self) -> RouteTable:
        """A full snapshot of every app's routing state."""
        with self.db.snapshot() as tx:
            exhausted = self._eco_exhausted(tx)
            apps = tx.rows("SELECT id, name, maintenance FROM apps")
            deployed = {
                app_id
                for (app_id,) in tx.rows(
                    "SELECT DISTINCT app_id FROM releases"
                    " WHERE status = 'succeeded' AND slug_id IS NOT NULL"
                )
            }
            web_quantity = dict(
                tx.rows("SELECT app_id, quantity FROM formations WHERE type = 'web'")
            )
            dynos = tx.rows(
                "SELECT app_id, name, state, port FROM dynos WHERE type = 'web' ORDER BY name"
            )
            domains, certificates = _custom_domains(tx)
            pages = {
                app_id: (usable_page_url(error), usable_page_url(maintenance))
                for app_id, error, maintenance in tx.rows(
                    PAGE_URLS, ERROR_PAGE_URL, MAINTENANCE_PAGE_URL
                )
                if error or maintenance
            }
        up: defaultdict[str, list[UpDyno]] = defaultdict(list)
        crashed: Counter[str] = Counter()
        starting: Counter[str] = Counter()
        idle: Counter[str] = Counter()
        for app_id, name, state, port in dynos:
            if state == "up" and port:
                up[app_id].append(UpDyno(name, port))
            elif state == "crashed":
                crashed[app_id] += 1
            elif state == "starting":
                starting[app_id] += 1
            elif state == "idle":
                idle[app_id] += 1
        return RouteTable.of(
            *(
                AppRoute(
                    app_id=app_id,
                    name=name,
                    maintenance=bool(maintenance),
                    deployed=app_id in deployed,
                    web_quantity=web_quantity.get(app_id, 0),
                    up=tuple(up[app_id]),
                    crashed=crashed[app_id],
                    starting=starting[app_id],
                    idle=idle[app_id],
                    eco_exhausted=app_id in exhausted,
                    error_page_url=pages.get(app_id, ("", ""))[0],
                    maintenance_page_url=pages.get(app_id, ("", ""))[1],
                )
                for app_id, name, maintenance in apps
            ),
            domains=domains,
            certificates=certificates,
        )

    def _eco_exhausted(self, tx: Transaction) -> set[str]:
        """The eco apps (an eco web formation) whose owner's eco dyno hours are used up."""
        if self.eco_quota is None:
            return set()
        owners = exhausted_owners(tx, self.eco_quota, month_of(self.clock()))
        return {
            app_id
            for app_id, owner in tx.rows(
                "SELECT a.id, a.owner_id FROM apps a JOIN formations f ON f.app_id = a.id"
                " WHERE f.type = 'web' AND f.size = ? AND f.quantity > 0",
                ECO,
            )
            if owner in owners
        }

    def certificate(self, endpoint_id: str) -> tuple[str, str]:
        """An SNI endpoint's certificate chain and private key."""
        with self.db.snapshot() as tx:
            row = tx.row(
                "SELECT certificate_chain, private_key FROM sni_endpoints WHERE id = ?",
                endpoint_id,
            )
        if row is None:
            raise LookupError(f"no SNI endpoint {endpoint_id}")
        return row[0], row[1]

    def record_requests(self, last_requests: Mapping[str, float]) -> None:
        """Store each app's last request (unix seconds); a time never moves back, and apps
        deleted meanwhile are skipped."""
        if not last_requests:
            return
        with self.db.write() as tx:
            live = {app_id for (app_id,) in tx.rows("SELECT id FROM apps")}
            tx.run_many(
                "INSERT INTO app_activity (app_id, last_request_at) VALUES (?, ?)"
                " ON CONFLICT (app_id) DO UPDATE SET last_request_at = excluded.last_request_at"
                " WHERE app_activity.last_request_at < excluded.last_request_at",
                [
                    (app_id, datetime.fromtimestamp(at, UTC))
                    for app_id, at in last_requests.items()
                    if app_id in live
                ],
            )


def _custom_domains(tx: Transaction) -> tuple[dict[str, str], dict[str, Certificate]]:
    """Custom domains (hostname -> app name) and the certificates they use (hostname ->
    certificate, versioned by its last change so that a new one is loaded)."""
    versions = {
        endpoint_id: moment(updated_at).isoformat()
        for endpoint_id, updated_at in tx.rows("SELECT id, updated_at FROM sni_endpoints")
    }
    domains: dict[str, str] = {}
    certificates: dict[str, Certificate] = {}
    for hostname, app_name, endpoint_id in tx.rows(
        "SELECT d.hostname, a.name, d.sni_endpoint_id FROM domains d JOIN apps a ON a.id = d.app_id"
    ):
        domains[hostname] = app_name
        if endpoint_id in versions:
            certificates[hostname] = Certificate(endpoint_id, versions[endpoint_id])
    return domains, certificates


class RequestMetricsRecorder:
    """The router's MetricsWriter: adds one router worker's counts to its own rows (each
    worker writes only rows with its name, so no two writers touch a row) and forgets rows
    older than `keep`. A write is one transaction: when it fails nothing is added, and the
    caller keeps the counts for the next one."""

    def __init__(
        self,
        db: Database,
        worker: str,
        keep: timedelta = KEEP_ROUTER_METRICS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.worker = worker
        self.keep = keep
        self.clock = clock
        self._pruned_at: float | None = None

    def __call__(self, counts: Sequence[MinuteCounts]) -> None:
        tick = self.clock()
        prune = self._pruned_at is None or tick - self._pruned_at >= PRUNE_EVERY
        with self.db.write() as tx:
            live = {app_id for (app_id,) in tx.rows("SELECT id FROM apps")}
            totals: dict[tuple[str, datetime], MinuteCounts] = {}
            for item in counts:
                if item.app_id not in live:
                    continue  # deleted meanwhile: its counts go with it
                key = (item.app_id, item.minute)
                if key not in totals:
                    totals[key] = MinuteCounts(item.app_id, item.minute)
                totals[key].add(item)
            if totals:
                self._add(tx, totals)
            if prune:
                tx.run("DELETE FROM router_metrics WHERE minute < ?", _now() - self.keep)
        if prune:
            self._pruned_at = tick

    def _add(self, tx: Transaction, totals: dict[tuple[str, datetime], MinuteCounts]) -> None:
        """Add to this worker's stored rows; make those it has not got yet."""
        stored = set()
        for app_id, minute, requests, *status, histogram in tx.rows(
            "SELECT app_id, minute, requests, status_1xx, status_2xx, status_3xx, status_4xx,"
            " status_5xx, histogram FROM router_metrics WHERE worker = ? AND minute >= ?",
            self.worker,
            min(minute for _, minute in totals),
        ):
            total = totals.get((app_id, moment(minute)))
            if total is not None:
                total.add(
                    MinuteCounts(app_id, total.minute, requests, status, json_value(histogram))
                )
                stored.add((app_id, total.minute))
        tx.run_many(
            "UPDATE router_metrics SET requests = ?, status_1xx = ?, status_2xx = ?,"
            " status_3xx = ?, status_4xx = ?, status_5xx = ?, histogram = ?"
            " WHERE app_id = ? AND minute = ? AND worker = ?",
            [(*_values(t), *key, self.worker) for key, t in totals.items() if key in stored],
        )
        tx.run_many(
            "INSERT INTO router_metrics (app_id, minute, worker, requests, status_1xx,"
            " status_2xx, status_3xx, status_4xx, status_5xx, histogram)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*key, self.worker, *_values(t)) for key, t in totals.items() if key not in stored],
        )


def _values(total: MinuteCounts) -> tuple[object, ...]:
    """A row's requests, status classes and histogram (JSON as the ORM writes it: text the
    database parses)."""
    return (total.requests, *total.status, json.dumps(total.histogram))
