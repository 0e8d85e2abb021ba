"""/apps/{app}/metrics/memory: the memory each dyno used, sampled by the agent (Kapal's own
route; Heroku serves its metrics from a separate service)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query

from kapal.api import serializers
from kapal.api.deps import CtxDep, UserDep
from kapal.services.metrics import memory_samples

router = APIRouter()


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
