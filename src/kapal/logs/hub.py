"""The log hub (Kapal's logplex): per-app history of recent lines and live tails.

All methods run on the agent's event loop thread; append() is called for every line of dyno
output, so it does a deque append and one cheap check per live tail of that app.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from kapal.domain.logline import LogLine
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
    ) -> None:
        self.history_lines = history_lines
        self.tail_queue = tail_queue
        self._clock = clock
        self._buffers: dict[str, deque[Entry]] = {}
        self._next_seq: dict[str, int] = {}
        self._subscribers: dict[str, set[Subscription]] = {}
        self._closed = False

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
        entry = Entry(seq, line)
        self._buffers[app_id].append(entry)
        for subscription in self._subscribers.get(app_id, ()):
            subscription.offer(entry)
        return seq

    def history(
        self,
        app_id: str,
        log_filter: LogFilter = ANY,
        n: int = 100,
        *,
        after: int | None = None,
    ) -> list[Entry]:
        """The last `n` matching entries, oldest first; with `after`, only newer seqs."""
        found: list[Entry] = []
        if n <= 0:
            return found
        for entry in reversed(self._buffers.get(app_id, ())):
            if after is not None and entry.seq is not None and entry.seq <= after:
                break
            if log_filter.matches(entry.line):
                found.append(entry)
                if len(found) == n:
                    break
        found.reverse()
        return found

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
        for subscriptions in self._subscribers.values():
            for subscription in subscriptions:
                subscription.end()

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscriptions = self._subscribers.get(subscription.app_id)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscribers[subscription.app_id]
