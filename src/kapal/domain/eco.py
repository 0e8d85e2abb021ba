"""Eco dynos: which dynos count against an account's monthly eco dyno hours, the months they
are counted in, and the quota as `kapal ps` shows it (as Heroku's CLI does)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

ECO = "eco"
SLEEP_AFTER = 1800.0  # seconds without a request before an eco app's dynos sleep (Heroku: 30 min)
QUOTA_HOURS = 1000.0  # eco dyno hours per account per month (Heroku's Eco plan)


def month_of(moment: float) -> str:
    """The month (UTC, `2026-11`) that eco usage at unix time `moment` counts in."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m")


def next_month(moment: float) -> float:
    """When the month after that of `moment` begins (UTC), as unix time."""
    at = datetime.fromtimestamp(moment, UTC)
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def split_by_month(start: float, end: float) -> dict[str, float]:
    """Seconds of [start, end) in each month they fall in."""
    out: dict[str, float] = {}
    at = start
    while at < end:
        until = min(end, next_month(at))
        month = month_of(at)
        out[month] = out.get(month, 0.0) + until - at
        at = until
    return out


@dataclass(frozen=True, slots=True)
class Quota:
    """An account's eco dyno seconds this month: its quota, what it used, per app."""

    account_quota: int
    quota_used: int
    apps: dict[str, int]  # app id -> seconds

    @property
    def exhausted(self) -> bool:
        return self.quota_used >= self.account_quota

    def as_json(self) -> dict[str, object]:
        """Heroku's `GET /accounts/{id}/actions/get-quota`."""
        return {
            "account_quota": self.account_quota,
            "quota_used": self.quota_used,
            "apps": [{"app_uuid": app, "quota_used": used} for app, used in self.apps.items()],
        }

    def notice(self) -> str | None:
        """What to tell the owner of an eco app scaled when a tenth of the hours or less is
        left (Heroku sends such notices by email; Kapal in a Warning-Message header)."""
        left = self.account_quota - self.quota_used
        if self.exhausted:
            return (
                "Your eco dyno hours are used up this month: your eco apps sleep until the "
                "month turns."
            )
        if left * 10 <= self.account_quota:
            return (
                f"Your eco dyno hours are nearly used up: {_hours_minutes(left)} left this "
                "month. Then your eco apps sleep until the month turns."
            )
        return None


def quota_seconds(hours: float) -> int:
    return int(hours * 3600)


def _hours_minutes(seconds: float) -> str:
    minutes = int(max(seconds, 0) // 60)
    return f"{minutes // 60}h {minutes % 60}m"


def quota_lines(account_quota: int, quota_used: int, app_used: int) -> list[str]:
    """`kapal ps` on an eco app, as Heroku's CLI prints it."""
    remaining = max(account_quota - quota_used, 0)
    percent = remaining * 100 // account_quota if account_quota else 0
    app_percent = app_used * 100 // account_quota if account_quota else 0
    return [
        f"Eco dyno hours quota remaining this month: {_hours_minutes(remaining)} ({percent}%)",
        f"Eco dyno usage for this app: {_hours_minutes(app_used)} ({app_percent}%)",
    ]


def process_tier(sizes: list[str]) -> str:
    """Heroku's `process_tier` of an app from its formation's sizes (none yet: the default,
    eco): `eco`, `basic` or `production`."""
    if all(size == ECO for size in sizes):
        return ECO
    if all(size in (ECO, "basic") for size in sizes):
        return "basic"
    return "production"
