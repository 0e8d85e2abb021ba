"""How times read on the dashboard: pure functions, used as template filters."""

from __future__ import annotations

from datetime import UTC, datetime


def ago(when: datetime | None, now: datetime) -> str:
    """`42s ago`, `5m ago`, `3h ago`, `2d ago` (a dash when there is no time)."""
    if when is None:
        return "—"
    seconds = max(0, int((now - when).total_seconds()))  # clocks may disagree a little
    if seconds < 60:
        return f"{seconds}s ago"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h ago"
    return f"{hours // 24}d ago"


def timestamp(when: datetime | None) -> str:
    """`2024-05-01 12:00:00 UTC`, the way Heroku's dashboard shows exact times."""
    if when is None:
        return "—"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
