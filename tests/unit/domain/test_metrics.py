"""Response-time buckets, merging and percentiles of the router's request metrics."""

import itertools
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.metrics import (
    BOUNDS_MS,
    BUCKETS,
    MinuteCounts,
    added,
    bucket,
    minute_start,
    percentile,
)


def histogram_of(*times_ms: float) -> list[int]:
    histogram = [0] * BUCKETS
    for ms in times_ms:
        histogram[bucket(ms)] += 1
    return histogram


def test_buckets_are_log_spaced_from_1_ms_to_60_s() -> None:
    assert BOUNDS_MS[0] == 1.0 and BOUNDS_MS[-1] == 60_000.0
    assert list(BOUNDS_MS) == sorted(set(BOUNDS_MS))
    ratios = [b / a for a, b in itertools.pairwise(BOUNDS_MS)]
    assert all(1.1 < r < 1.35 for r in ratios[:-1])
    assert len(BOUNDS_MS) + 1 == BUCKETS


@pytest.mark.parametrize(
    ("ms", "index"),
    [(0, 0), (0.4, 0), (1, 0), (1.01, 1), (1.25, 1), (100, 20), (60_000, 48), (60_001, 49)],
)
def test_a_time_falls_in_the_bucket_whose_upper_bound_it_reaches(ms: float, index: int) -> None:
    assert bucket(ms) == index


def test_percentiles_interpolate_within_the_bucket() -> None:
    assert percentile([0] * BUCKETS, 0.5) is None
    assert percentile([], 0.99) is None
    # 100 requests: 90 at 10 ms, 9 at 100 ms, 1 at 1 s.
    histogram = histogram_of(*[10] * 90, *[100] * 9, 1000)
    p50 = percentile(histogram, 0.5)
    assert p50 is not None and 8 < p50 <= 10
    p95 = percentile(histogram, 0.95)
    assert p95 is not None and 80 < p95 <= 100
    assert percentile(histogram, 0.99) == pytest.approx(100)
    assert percentile(histogram, 1.0) == pytest.approx(1000)


def test_a_response_over_60_s_reads_as_60_s() -> None:
    assert percentile(histogram_of(90_000), 0.5) == 60_000


@given(st.lists(st.floats(min_value=0, max_value=120_000), min_size=1, max_size=200))
def test_a_percentile_lies_within_a_bucket_of_the_true_value(times: list[float]) -> None:
    histogram = histogram_of(*times)
    ordered = sorted(times)
    for q in (0.5, 0.95, 0.99):
        value = percentile(histogram, q)
        assert value is not None
        true = min(ordered[math.ceil(q * len(ordered)) - 1], 60_000)  # nearest rank
        index = bucket(true)
        low = BOUNDS_MS[index - 1] if index else 0.0
        high = BOUNDS_MS[min(index, len(BOUNDS_MS) - 1)]
        assert low <= value <= high


def test_counts_of_several_workers_add_up() -> None:
    minute = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    one = MinuteCounts("a", minute, 3, [0, 2, 0, 1, 0], histogram_of(5, 5, 50))
    two = MinuteCounts("a", minute, 1, [0, 0, 0, 0, 1], [0, 1])  # an older, shorter list
    one.add(two)
    assert one.requests == 4
    assert one.status == [0, 2, 0, 1, 1]
    assert sum(one.histogram) == 4 and one.histogram[1] == 1 and len(one.histogram) == BUCKETS
    assert added([1, 2], [3]) == [4, 2]


def test_the_minute_of_a_unix_time() -> None:
    assert minute_start(1_800_000_059.9) == datetime(2027, 1, 15, 8, 0, tzinfo=UTC)
