"""The log hub (Kapal's logplex): per-app history of recent lines, live tails, listeners
(drains) and, with an archive, every line kept on disk.

All methods run on the agent's event loop thread; append() is called for every line of dyno
output, so it does a deque append, a list append for the archive and one cheap check per
live tail and listener of that app.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from kapal.domain.logline import LogLine
from kapal.logs.archive import FLUSH_EVERY, LogArchive, Query
from kapal.logs.filters import ANY, LogFilter
from kapal.logs.subscription import Entry, Subscription

HISTORY_LINES = 1500  # Logplex's LOG_HISTORY
TAIL_QUEUE = 1000


class LogHub:
    def __init__(
        self,
        history_lines: int = HISTORY_LINES,
        tail_queue: int = TAIL_QUEUE,
        clock: Callable[[], float] = time.time,
        archive: LogArchive | None = None,
    ) -> None:
        self.history_lines = history_lines
        self.tail_queue = tail_queue
        self.archive = archive
        self.appended = 0  # lines taken since start (the benchmark's and tests' counter)
        self._clock = clock
        self._buffers: dict[str, deque[Entry]] = {}
        self._next_seq: dict[str, int] = {}
        self._subscribers: dict[str, set[Subscription]] = {}
        self._listeners: list[Callable[[LogLine], None]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def load(self) -> None:
        """Fill each app's history from the archive, and go on from its last seq."""
        if self.archive is None:
            return
        archive = self.archive
        for app_id in await asyncio.to_thread(archive.app_ids):
            entries = await asyncio.to_thread(archive.recent, app_id, self.history_lines)
            if entries and app_id not in self._buffers:
                self._buffers[app_id] = deque(entries, maxlen=self.history_lines)
                last = entries[-1].seq or 0
                self._next_seq[app_id] = max(last + 1, int(self._clock() * 1_000_000))

    def add_listener(self, listener: Callable[[LogLine], None]) -> None:
        """`listener(line)` for every line appended from now on; it must not block or raise."""
        self._listeners.append(listener)

    def append(self, line: LogLine) -> int:
        """Keep the line in its app's history, hand it to live tails; returns its seq."""
        app_id = line.app_id
        seq = self._next_seq.get(app_id)
        if seq is None:
            # Start from the clock in microseconds so ids keep growing across agent restarts:
            # an SSE client resuming with Last-Event-ID after a restart then skips nothing new.
            seq = int(self._clock() * 1_000_000)
            self._buffers[app_id] = deque(maxlen=self.history_lines)
        self._next_seq[app_id] = seq + 1
        self.appended += 1
        entry = Entry(seq, line)
        self._buffers[app_id].append(entry)
        for subscription in self._subscribers.get(app_id, ()):
            subscription.offer(entry)
        for listener in self._listeners:
            listener(line)
        if self.archive is not None:
            if self.archive.append(entry) or self._closed:
                self.archive.flush(app_id)
            elif self._flush_timer is None:
                loop = asyncio.get_running_loop()
                self._flush_timer = loop.call_later(FLUSH_EVERY, self._flush)
        return seq

    def _flush(self) -> None:
        self._flush_timer = None
        if self.archive is not None:
            self.archive.flush()

    def history(
        self,
        app_id: str,
        log_filter: LogFilter = ANY,
        n: int = 100,
        *,
        after: int | None = None,
    ) -> list[Entry]:
        """The last `n` matching entries in memory, oldest first; with `after`, only newer
        seqs."""
        return self._remembered(app_id, Query(log_filter, n, after=after))[0]

    async def search(self, app_id: str, query: Query) -> list[Entry]:
        """Like history(), reaching back into the archive for what memory no longer holds
        (more lines than it keeps, `since` further back, a search for rare text)."""
        found, complete = self._remembered(app_id, query)
        if complete or self.archive is None:
            return found
        self.archive.flush(app_id)  # what memory dropped may still be waiting to be written
        oldest = self._buffers[app_id][0].seq if self._buffers.get(app_id) else None
        older = await asyncio.to_thread(
            self.archive.scan,
            app_id,
            Query(query.log_filter, query.limit - len(found), query.since, query.after, oldest),
        )
        return older + found

    def _remembered(self, app_id: str, query: Query) -> tuple[list[Entry], bool]:
        """Matches from memory, oldest first, and whether they are all there are (True
        unless memory is full and ran out before the query was satisfied)."""
        found: list[Entry] = []
        if query.limit <= 0:
            return found, True
        buffer = self._buffers.get(app_id, ())
        for entry in reversed(buffer):
            if query.after is not None and entry.seq is not None and entry.seq <= query.after:
                break
            if query.since is not None and entry.line.time < query.since:
                break
            if query.log_filter.matches(entry.line):
                found.append(entry)
                if len(found) == query.limit:
                    break
        else:
            found.reverse()
            return found, len(buffer) < self.history_lines
        found.reverse()
        return found, True

    def subscribe(
        self, app_id: str, log_filter: LogFilter = ANY, maxsize: int | None = None
    ) -> Subscription:
        """A live tail of lines appended from now on; close it (or use `with`) when done."""
        subscription = Subscription(
            app_id, log_filter, maxsize or self.tail_queue, self._clock, self._unsubscribe
        )
        if self._closed:
            subscription.end()
        else:
            self._subscribers.setdefault(app_id, set()).add(subscription)
        return subscription

    def subscriber_count(self, app_id: str) -> int:
        return len(self._subscribers.get(app_id, ()))

    def close(self) -> None:
        """End every live tail (they drain, then stop), so streaming responses can finish."""
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush()
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.end()

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscriptions = self._subscribers.get(subscription.app_id)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscribers[subscription.app_id]
