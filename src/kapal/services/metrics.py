"""Dyno metrics the agent samples: memory use per dyno over the last day."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.models import MemorySample, User, now


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
