"""/apps/{app}/metrics: requests per minute, counted by the router, and /metrics/memory: the
memory each dyno used, sampled by the agent (Kapal's own routes; Heroku serves its metrics from
a separate service)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query

from kapal.api import serializers
from kapal.api.deps import CtxDep, UserDep
from kapal.domain.metrics import PERCENTILES, STATUS_CLASSES, MinuteCounts, percentile
from kapal.services.metrics import memory_samples, request_minutes

router = APIRouter()


@router.get("/apps/{app}/metrics")
def requests(
    app: str, ctx: CtxDep, user: UserDep, hours: float = Query(1.0, gt=0, le=168)
) -> list[dict[str, Any]]:
    """Requests per minute of the last `hours` (at most a week), oldest first; a minute
    without requests has no point."""
    _, minutes = request_minutes(ctx, user, app, timedelta(hours=hours))
    return [minute_json(counts) for counts in minutes]


def minute_json(counts: MinuteCounts) -> dict[str, Any]:
    """{minute, requests, status: {"2xx": n, ...}, p50, p95, p99}; response times in ms."""
    point: dict[str, Any] = {
        "minute": serializers.ts(counts.minute),
        "requests": counts.requests,
        "status": dict(zip(STATUS_CLASSES, counts.status, strict=False)),
    }
    for name, q in PERCENTILES:
        value = percentile(counts.histogram, q)
        point[name] = None if value is None else round(value, 1)
    return point


@router.get("/apps/{app}/metrics/memory")
def memory(
    app: str,
    ctx: CtxDep,
    user: UserDep,
    hours: float = Query(1.0, gt=0, le=24),
    dyno: str | None = Query(None, max_length=80),
) -> list[dict[str, Any]]:
    """Samples of the last `hours` (at most 24), oldest first; `dyno` picks one."""
    _, samples = memory_samples(ctx, user, app, timedelta(hours=hours), dyno)
    return [serializers.memory_sample_json(sample) for sample in samples]
