"""The router's request counter and its flusher, with a fake store writer."""

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from kapal.domain.metrics import BUCKETS, MinuteCounts, bucket
from kapal.router.metrics import MAX_MINUTES, MetricsFlusher, RequestCounter

T0 = 1_800_000_000.0  # a minute boundary: 2027-01-15 08:00 UTC
MINUTE = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


def by_key(counts: Sequence[MinuteCounts]) -> dict[tuple[str, datetime], MinuteCounts]:
    return {(c.app_id, c.minute): c for c in counts}


def test_requests_are_counted_per_app_and_minute() -> None:
    counter = RequestCounter()
    counter.count("a", 200, 5.0, T0 + 1)
    counter.count("a", 503, 30_000.0, T0 + 59.9)
    counter.count("a", 101, 2.0, T0 + 60)  # the next minute
    counter.count("b", 404, 0.5, T0 + 2)
    counts = by_key(counter.take())
    a = counts["a", MINUTE]
    assert (a.requests, a.status) == (2, [0, 1, 0, 0, 1])
    assert len(a.histogram) == BUCKETS
    assert a.histogram[bucket(5.0)] == a.histogram[bucket(30_000.0)] == 1
    later = counts["a", datetime(2027, 1, 15, 8, 1, tzinfo=UTC)]
    assert (later.requests, later.status) == (1, [1, 0, 0, 0, 0])
    assert counts["b", MINUTE].status == [0, 0, 0, 1, 0]
    assert counter.take() == []  # taken counts are forgotten


def test_counts_put_back_add_to_newer_ones() -> None:
    counter = RequestCounter()
    counter.count("a", 200, 5.0, T0)
    failed = counter.take()
    counter.count("a", 500, 5.0, T0 + 3)
    counter.put_back(failed)
    (a,) = counter.take()
    assert (a.requests, a.status, a.histogram[bucket(5.0)]) == (2, [0, 1, 0, 0, 1], 2)


def test_unsaved_minutes_are_bounded() -> None:
    counter = RequestCounter()
    for minute in range(MAX_MINUTES + 5):
        counter.count("a", 200, 1.0, T0 + 60 * minute)
    counter.put_back([])
    counts = counter.take()
    assert len(counts) == MAX_MINUTES
    assert min(c.minute for c in counts) == datetime(2027, 1, 15, 8, 5, tzinfo=UTC)


class Writer:
    """Keeps what it is given; fails while `failing`; can be held mid-write."""

    def __init__(self) -> None:
        self.saved: list[MinuteCounts] = []
        self.failing = False
        self.calls = 0
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def __call__(self, counts: Sequence[MinuteCounts]) -> None:
        self.calls += 1
        self.entered.set()
        self.hold.wait(10)
        if self.failing:
            raise OSError("store unreachable")
        self.saved.extend(counts)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_failed_write_keeps_the_counts_for_the_next_flush(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter, writer = RequestCounter(), Writer()
    flusher = MetricsFlusher(counter, writer)
    await flusher.flush()
    assert writer.calls == 0  # nothing counted: nothing written
    counter.count("a", 200, 3.0, T0)
    writer.failing = True
    await flusher.flush()
    assert writer.saved == [] and "router metrics not saved" in caplog.text
    counter.count("a", 200, 3.0, T0 + 1)
    writer.failing = False
    await flusher.flush()
    assert [(c.app_id, c.requests) for c in writer.saved] == [("a", 2)]


@pytest.mark.anyio
async def test_a_flush_cancelled_mid_write_lets_the_write_finish_first() -> None:
    counter, writer = RequestCounter(), Writer()
    flusher = MetricsFlusher(counter, writer)
    counter.count("a", 200, 3.0, T0)
    writer.hold.clear()
    first = asyncio.ensure_future(flusher.flush())
    async with asyncio.timeout(10):
        while not writer.entered.is_set():
            await asyncio.sleep(0.01)
    first.cancel()
    counter.count("a", 200, 3.0, T0 + 1)
    last = asyncio.ensure_future(flusher.flush())  # the final flush at shutdown
    await asyncio.sleep(0.05)
    assert not last.done()  # waits for the write in flight
    writer.hold.set()
    await last
    assert [c.requests for c in writer.saved] == [1, 1]
    assert first.cancelled()
