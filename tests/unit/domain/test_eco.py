"""Eco dyno hours: months, the quota's arithmetic and how `kapal ps` shows it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.eco import (
    Quota,
    month_of,
    next_month,
    process_tier,
    quota_lines,
    quota_seconds,
    split_by_month,
)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_months_are_utc() -> None:
    assert month_of(at("2026-11-30T23:59:59")) == "2026-11"
    assert month_of(at("2026-12-01T00:00:00")) == "2026-12"
    assert next_month(at("2026-12-15T10:00:00")) == at("2027-01-01T00:00:00")


def test_running_time_is_split_where_months_turn() -> None:
    assert split_by_month(at("2026-11-30T23:00:00"), at("2026-12-01T00:30:00")) == {
        "2026-11": 3600.0,
        "2026-12": 1800.0,
    }
    assert split_by_month(at("2026-11-02T00:00:00"), at("2026-11-02T00:00:00")) == {}


@given(st.floats(1.7e9, 1.9e9), st.floats(0, 100 * 86400))
def test_a_split_adds_up_to_the_whole(start: float, length: float) -> None:
    parts = split_by_month(start, start + length)
    assert sum(parts.values()) == pytest.approx(length, abs=1e-3)


def test_the_quota_as_herokus_get_quota_returns_it() -> None:
    quota = Quota(quota_seconds(1000), 7200, {"app-1": 3600, "gone": 3600})
    assert quota.as_json() == {
        "account_quota": 3_600_000,
        "quota_used": 7200,
        "apps": [
            {"app_uuid": "app-1", "quota_used": 3600},
            {"app_uuid": "gone", "quota_used": 3600},
        ],
    }
    assert not quota.exhausted
    assert Quota(3600, 3600, {}).exhausted


def test_ps_lines_as_herokus_cli_prints_them() -> None:
    used = 26 * 3600 + 48 * 60
    assert quota_lines(3_600_000, used, used) == [
        "Eco dyno hours quota remaining this month: 973h 12m (97%)",
        "Eco dyno usage for this app: 26h 48m (2%)",
    ]
    assert quota_lines(3_600_000, 3_700_000, 0)[0] == (
        "Eco dyno hours quota remaining this month: 0h 0m (0%)"
    )
    assert quota_lines(0, 0, 0)[0] == "Eco dyno hours quota remaining this month: 0h 0m (0%)"


def test_process_tier() -> None:
    assert process_tier([]) == "eco"
    assert process_tier(["eco", "eco"]) == "eco"
    assert process_tier(["eco", "basic"]) == "basic"
    assert process_tier(["standard-1x"]) == "production"
