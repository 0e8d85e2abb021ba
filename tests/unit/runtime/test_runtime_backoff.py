"""The crash back-off schedule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kapal.runtime.backoff import Backoff


def test_first_restart_is_immediate_then_doubling_up_to_the_cap() -> None:
    backoff = Backoff()
    delays = [backoff.delay(n) for n in range(1, 10)]
    assert delays == [0, 10, 20, 40, 80, 160, 320, 640, 1200]
    assert backoff.delay(10_000) == 20 * 60


def test_schedule_is_a_parameter() -> None:
    fast = Backoff(first=0.01, cap=0.04)
    assert [fast.delay(n) for n in range(1, 6)] == [0, 0.01, 0.02, 0.04, 0.04]


@given(st.integers(0, 10_000))
def test_delays_never_shrink_and_never_pass_the_cap(crashes: int) -> None:
    backoff = Backoff()
    assert 0 <= backoff.delay(crashes) <= backoff.delay(crashes + 1) <= backoff.cap


def test_crash_count_restarts_after_a_stable_run() -> None:
    backoff = Backoff(stable_after=60)
    assert backoff.crashes_after_exit(3, up_for=None) == 4  # never came up
    assert backoff.crashes_after_exit(3, up_for=59) == 4
    assert backoff.crashes_after_exit(3, up_for=60) == 1
