"""Request metrics per app and minute: counted in memory as requests end, flushed to the store
now and then in a worker thread, so the event loop never waits for the store."""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Protocol

from kapal.domain.metrics import BOUNDS_MS, BUCKETS, STATUS_CLASSES, MinuteCounts, minute_start

logger = logging.getLogger(__name__)

# One flat list of ints per (minute, app): requests, the five status classes, the histogram.
_STATUS = 1
_HISTOGRAM = _STATUS + len(STATUS_CLASSES)
_WIDTH = _HISTOGRAM + BUCKETS
MAX_MINUTES = 24 * 60  # unsaved minutes kept while the store is unreachable


class MetricsWriter(Protocol):
    """Adds counts to the stored ones (kapal.entrypoints.router_store.RequestMetricsRecorder
    in production).
    Blocking: it is called in a worker thread."""

    def __call__(self, counts: Sequence[MinuteCounts]) -> None: ...


class RequestCounter:
    """Counts the requests the router finished that were not saved yet."""

    __slots__ = ("_minutes",)

    def __init__(self) -> None:
        self._minutes: dict[int, dict[str, list[int]]] = {}  # unix minute -> app id -> counts

    def count(self, app_id: str, status: int, ms: float, unix: float) -> None:
        """One request of `app_id` answered with `status` in `ms`, ended at `unix` time."""
        minute = int(unix // 60)
        apps = self._minutes.get(minute)
        if apps is None:
            apps = self._minutes[minute] = {}
        row = apps.get(app_id)
        if row is None:
            row = apps[app_id] = [0] * _WIDTH
        row[0] += 1
        klass = status // 100  # 1 to 5: its column, right after the requests
        if 0 < klass < _HISTOGRAM:
            row[klass] += 1
        row[_HISTOGRAM + bisect_left(BOUNDS_MS, ms)] += 1

    def take(self) -> list[MinuteCounts]:
        """Everything counted so far, forgotten here: the caller saves it (or puts it back)."""
        minutes, self._minutes = self._minutes, {}
        return [
            MinuteCounts(
                app_id,
                minute_start(minute * 60),
                row[0],
                row[_STATUS:_HISTOGRAM],
                row[_HISTOGRAM:],
            )
            for minute, apps in minutes.items()
            for app_id, row in apps.items()
        ]

    def put_back(self, counts: Iterable[MinuteCounts]) -> None:
        """Counts that could not be saved, for the next try."""
        for item in counts:
            minute = int(item.minute.timestamp()) // 60
            apps = self._minutes.setdefault(minute, {})
            row = apps.setdefault(item.app_id, [0] * _WIDTH)
            row[0] += item.requests
            for offset, value in enumerate(item.status[: _HISTOGRAM - _STATUS]):
                row[_STATUS + offset] += value
            for offset, value in enumerate(item.histogram[:BUCKETS]):
                row[_HISTOGRAM + offset] += value
        if len(self._minutes) > MAX_MINUTES:
            dropped = sorted(self._minutes)[: len(self._minutes) - MAX_MINUTES]
            for minute in dropped:
                del self._minutes[minute]
            logger.warning("router metrics of %d unsaved minutes dropped", len(dropped))


class MetricsFlusher:
    """Saves a RequestCounter's counts through a MetricsWriter, one write at a time."""

    def __init__(self, counter: RequestCounter, writer: MetricsWriter) -> None:
        self.counter = counter
        self.writer = writer
        self._writing: asyncio.Future[None] | None = None

    async def run(self, interval: float) -> None:
        """Flush every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.flush()

    async def flush(self) -> None:
        """Save what was counted; on a store error keep it for the next flush."""
        if self._writing is not None:
            # A write cancelled mid-way (at shutdown) still runs in its thread: let it end,
            # so two writes never add to the same rows at once.
            await asyncio.wait([self._writing])
        counts = self.counter.take()
        if not counts:
            return
        loop = asyncio.get_running_loop()
        writing = self._writing = loop.run_in_executor(None, self.writer, counts)
        writing.add_done_callback(lambda done: self._written(done, counts))
        # asyncio.wait never cancels what it waits for: a flush cancelled now leaves the
        # write running, and its callback still puts the counts back if it fails.
        await asyncio.wait([writing])

    def _written(self, done: asyncio.Future[None], counts: list[MinuteCounts]) -> None:
        if self._writing is done:
            self._writing = None
        error = None if done.cancelled() else done.exception()
        if done.cancelled() or error is not None:
            logger.error("router metrics not saved, kept for the next try", exc_info=error)
            self.counter.put_back(counts)
