"""Metrics as the API serves them: memory use per dyno (sampled and stored by the agent) and
requests per app and minute (counted and stored by the router, kapal.entrypoints.router_store),
each kept for a while and then forgotten."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from kapal.domain.metrics import MinuteCounts
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.models import MemorySample, RouterMetric, User, now


def memory_samples(
    ctx: Context, user: User, ident: str, since: timedelta, dyno: str | None = None
) -> tuple[str, list[MemorySample]]:
    """(the app's name, its samples newer than `since` ago, oldest first); the caller must
    have access to the app."""
    with ctx.store.session() as s:
        app = find_app(s, user, ident)
        query = select(MemorySample).where(
            MemorySample.app_id == app.id, MemorySample.at >= now() - since
        )
        if dyno is not None:
            query = query.where(MemorySample.dyno == dyno)
        return app.name, list(s.scalars(query.order_by(MemorySample.at, MemorySample.id)))


def request_minutes(
    ctx: Context, user: User, ident: str, since: timedelta
) -> tuple[str, list[MinuteCounts]]:
    """(the app's name, its request counts per minute of the last `since`, every router
    worker's added up, oldest first; minutes without requests left out); the caller must
    have access to the app."""
    with ctx.store.snapshot() as s:
        app = find_app(s, user, ident)
        first = (now() - since).replace(second=0, microsecond=0)
        rows = s.scalars(
            select(RouterMetric)
            .where(RouterMetric.app_id == app.id, RouterMetric.minute >= first)
            .order_by(RouterMetric.minute, RouterMetric.worker)
        )
        minutes: dict[datetime, MinuteCounts] = {}
        for row in rows:
            counts = _counts(row)
            merged = minutes.get(row.minute)
            if merged is None:
                minutes[row.minute] = counts
            else:
                merged.add(counts)
        return app.name, list(minutes.values())


def _counts(row: RouterMetric) -> MinuteCounts:
    return MinuteCounts(
        row.app_id,
        row.minute,
        row.requests,
        [row.status_1xx, row.status_2xx, row.status_3xx, row.status_4xx, row.status_5xx],
        list(row.histogram),
    )
