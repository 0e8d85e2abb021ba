"""Eco dyno hours: an account's quota and use this month (Heroku's get-quota), and an app's
process tier."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.domain.eco import ECO, Quota, month_of, process_tier, quota_seconds
from kapal.domain.errors import NotFound
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.eco import usage_by_app
from kapal.store.models import App, Formation, User


def get_quota(ctx: Context, user: User, account: str, now: float | None = None) -> Quota:
    """The eco dyno hours of `account` (the user's own id, email or `~`) this month."""
    if account not in (user.id, user.email, "~"):
        raise NotFound("Couldn't find that account.")
    month = month_of(time.time() if now is None else now)
    with ctx.store.session() as s:
        apps = {
            app_id: round(seconds) for app_id, seconds in usage_by_app(s, user.id, month).items()
        }
    return Quota(quota_seconds(ctx.settings.eco_quota_hours), sum(apps.values()), apps)


def scaling_notice(ctx: Context, user: User, app_ident: str) -> str | None:
    """The eco quota's notice (`Quota.notice`) if the app runs eco dynos."""
    with ctx.store.session() as s:
        if app_process_tier(s, find_app(s, user, app_ident)) != ECO:
            return None
    return get_quota(ctx, user, "~").notice()


def app_process_tier(s: Session, app: App) -> str:
    sizes = s.scalars(
        select(Formation.size).where(Formation.app_id == app.id, Formation.quantity > 0)
    )
    return process_tier(list(sizes))
