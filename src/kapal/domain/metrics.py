"""Router metrics math: response-time buckets, per-minute counts, merging and percentiles.

A histogram is a list of request counts, one per bucket: bucket i holds response times t with
BOUNDS_MS[i - 1] < t <= BOUNDS_MS[i] (bucket 0 everything up to 1 ms, the last one everything
over 60 s). Stored rows keep these lists, so the bounds only ever change with a migration.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from typing import Final


def _log_spaced() -> tuple[float, ...]:
    # Renard's R10 series (ten steps a decade, each about 26% above the last) from 1 ms to
    # 60 s: fine enough for a p95 to read true within a quarter; 50 buckets in all.
    steps = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)
    bounds = [round(step * 10**decade, 3) for decade in range(5) for step in steps]
    return (*(bound for bound in bounds if bound < 60_000), 60_000.0)


BOUNDS_MS: Final = _log_spaced()
BUCKETS: Final = len(BOUNDS_MS) + 1  # the last bucket is open: over 60 s
STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
PERCENTILES: Final = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def bucket(ms: float) -> int:
    """The histogram bucket of a response time in milliseconds."""
    return bisect_left(BOUNDS_MS, ms)


def minute_start(unix: float) -> datetime:
    """The UTC minute a unix time falls in."""
    return datetime.fromtimestamp(unix // 60 * 60, UTC)


@dataclass(slots=True)
class MinuteCounts:
    """One app's requests in one minute: how many, by status class, by response time."""

    app_id: str
    minute: datetime  # UTC, the start of the minute
    requests: int = 0
    status: list[int] = field(default_factory=lambda: [0] * len(STATUS_CLASSES))
    histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, other: MinuteCounts) -> None:
        """Add another worker's (or an earlier flush's) counts for the same app and minute."""
        self.requests += other.requests
        self.status = added(self.status, other.status)
        self.histogram = added(self.histogram, other.histogram)


def added(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """Element-wise sum; the shorter list counts as padded with zeros."""
    return [x + y for x, y in zip_longest(a, b, fillvalue=0)]


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The response time (ms) below which a fraction `q` of requests fell, interpolated
    linearly within its bucket; None with no requests. Over 60 s reads as 60 s."""
    total = sum(histogram)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            if index >= len(BOUNDS_MS):
                return BOUNDS_MS[-1]
            low = BOUNDS_MS[index - 1] if index else 0.0
            high = BOUNDS_MS[index]
            return low + (high - low) * max(rank - seen, 0) / count
        seen += count
    return BOUNDS_MS[-1]
