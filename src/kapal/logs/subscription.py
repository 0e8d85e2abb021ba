"""One live tail of an app's log stream: a bounded queue that drops, never blocks, when slow."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

from kapal.domain.logline import LogLine
from kapal.logs.filters import LogFilter


@dataclass(frozen=True, slots=True)
class Entry:
    """A line as the hub holds it. `seq` grows by one per line of an app; hub-made notices
    (tail overflow) have no seq, so a client resuming after one can still get the gap back."""

    seq: int | None
    line: LogLine
    # The line as shown, made once here: the archive and every session send it.
    text: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(self, "text", self.line.format())


def overflow_notice(app_id: str, dropped: int, since: float, now: float) -> LogLine:
    """Heroku's L11 line, shown to the one tail session that lost lines."""
    stamp = datetime.fromtimestamp(since, UTC).isoformat(timespec="microseconds")
    message = (
        f"Error L11 (Tail buffer overflow) -> This tail session dropped {dropped} messages "
        f"since {stamp}"
    )
    return LogLine(app_id, "kapal", "logplex", message, now)


class Subscription:
    """Async iterator of live entries; use as a context manager so it leaves the hub."""

    def __init__(
        self,
        app_id: str,
        log_filter: LogFilter,
        maxsize: int,
        clock: Callable[[], float],
        on_close: Callable[[Subscription], None],
    ) -> None:
        if maxsize < 1:
            raise ValueError("a subscription queue holds at least one line")
        self.app_id = app_id
        self.filter = log_filter
        self.maxsize = maxsize
        self.dropped_total = 0
        self._clock = clock
        self._on_close = on_close
        self._items: deque[Entry] = deque()
        self._wake = asyncio.Event()
        self._pending_drops = 0
        self._drops_since = 0.0
        self._closed = False

    def offer(self, entry: Entry) -> None:
        """Called by the hub for every line of the app; must never block or raise."""
        if self._closed or not self.filter.matches(entry.line):
            return
        if self._pending_drops:
            # The notice goes where the gap is: after what was queued, before what follows.
            if len(self._items) + 2 > self.maxsize:
                self._drop()
                return
            self._items.append(self._take_notice())
        elif len(self._items) >= self.maxsize:
            self._drop()
            return
        self._items.append(entry)
        self._wake.set()

    def end(self) -> None:
        """No more lines will come: the iterator stops once the queue is drained."""
        self._closed = True
        self._wake.set()

    def close(self) -> None:
        if not self._closed:
            self.end()
        self._items.clear()
        self._on_close(self)

    def _drop(self) -> None:
        if not self._pending_drops:
            self._drops_since = self._clock()
        self._pending_drops += 1
        self.dropped_total += 1

    def _take_notice(self) -> Entry:
        line = overflow_notice(self.app_id, self._pending_drops, self._drops_since, self._clock())
        self._pending_drops = 0
        return Entry(None, line)

    async def batch(self, limit: int = 1000) -> list[Entry]:
        """What is queued (at most `limit`), once there is something; [] when ended.
        Safe to cancel: nothing is taken before the wait ends."""
        while not self._items and not self._pending_drops:
            if self._closed:
                return []
            self._wake.clear()
            await self._wake.wait()
        taken: list[Entry] = []
        while self._items and len(taken) < limit:
            taken.append(self._items.popleft())
        if not self._items and self._pending_drops and len(taken) < limit:
            taken.append(self._take_notice())
        return taken

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Entry:
        # Safe to cancel (a timeout for keep-alives): nothing is taken before the wait ends.
        while True:
            if self._items:
                return self._items.popleft()
            if self._pending_drops:
                return self._take_notice()
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
