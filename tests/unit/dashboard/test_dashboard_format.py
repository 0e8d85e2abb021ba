from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kapal.dashboard.format import ago, timestamp

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s ago"),
        (timedelta(seconds=59), "59s ago"),
        (timedelta(seconds=60), "1m ago"),
        (timedelta(minutes=59, seconds=59), "59m ago"),
        (timedelta(hours=1), "1h ago"),
        (timedelta(hours=47), "47h ago"),
        (timedelta(hours=48), "2d ago"),
        (timedelta(days=400), "400d ago"),
        (timedelta(seconds=-5), "0s ago"),  # a clock a little ahead of ours
    ],
)
def test_ago(delta: timedelta, text: str) -> None:
    assert ago(NOW - delta, NOW) == text


def test_no_time_reads_as_a_dash() -> None:
    assert ago(None, NOW) == "—"
    assert timestamp(None) == "—"


def test_timestamps_are_shown_in_utc() -> None:
    local = datetime(2024, 5, 1, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp(local) == "2024-05-01 12:30:05 UTC"
