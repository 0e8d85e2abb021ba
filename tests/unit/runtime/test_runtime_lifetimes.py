"""Lifetimes: when formation dynos are cycled and one-off dynos end."""

from __future__ import annotations

import pytest

from kapal.runtime.lifetimes import Lifetimes

DAY = 24 * 3600.0


def test_formation_dynos_cycle_after_a_day_plus_up_to_216_minutes() -> None:
    lifetimes = Lifetimes()
    assert lifetimes.expires_at("formation", 100.0, 0.0) == 100.0 + DAY
    latest = lifetimes.expires_at("formation", 100.0, 0.999999)
    assert latest is not None and DAY + 100 < latest < DAY + 100 + 216 * 60
    assert lifetimes.expires_at("formation", 100.0, 0.5) == pytest.approx(100 + DAY + 108 * 60)


def test_one_offs_end_after_their_time_to_live_without_jitter() -> None:
    lifetimes = Lifetimes(run_ttl=60.0)
    assert lifetimes.expires_at("run", 100.0, 0.7) == 160.0


def test_release_phases_have_their_own_limit() -> None:
    assert Lifetimes().expires_at("release", 100.0, 0.5) is None


def test_zero_means_never() -> None:
    never = Lifetimes(cycle=0, run_ttl=0)
    assert never.expires_at("formation", 100.0, 0.5) is None
    assert never.expires_at("run", 100.0, 0.5) is None
