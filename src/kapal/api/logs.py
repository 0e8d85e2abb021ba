"""/apps/{app}/log-sessions: a URL on the log hub that streams the app's log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from kapal.api.deps import CtxDep, UserDep
from kapal.services.logsessions import MAX_LINES, create_log_session

router = APIRouter()


class LogSessionCreate(BaseModel):
    lines: int = Field(100, ge=0, le=MAX_LINES)
    tail: bool = False
    dyno: str | None = None
    dyno_name: str | None = None
    type: str | None = None
    source: str | None = None
    # Kapal's own: search the kept history (`kapal logs --grep TEXT --since 2h`).
    grep: str | None = None
    since: datetime | None = None


@router.post("/apps/{app}/log-sessions", status_code=201)
def create(app: str, body: LogSessionCreate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    url = create_log_session(
        ctx,
        user,
        app,
        lines=body.lines,
        tail=body.tail,
        dyno=body.dyno or body.dyno_name or body.type,
        source=body.source,
        grep=body.grep,
        since=body.since,
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"id": str(uuid.uuid4()), "logplex_url": url, "created_at": now, "updated_at": now}
