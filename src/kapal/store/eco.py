"""Eco dynos in the store: the accounts' eco dyno usage per app and month, as the API reads it
(written by the agent, kapal.entrypoints.agent_store; the router writes the apps' last
requests, kapal.entrypoints.router_store)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.store.models import EcoUsage


def usage_by_app(s: Session, user_id: str, month: str) -> dict[str, float]:
    """Eco dyno seconds one account used in `month`, per app (deleted apps included)."""
    rows = s.execute(
        select(EcoUsage.app_id, EcoUsage.seconds).where(
            EcoUsage.user_id == user_id, EcoUsage.month == month
        )
    )
    return {app_id: float(seconds) for app_id, seconds in rows}
