"""The drains of every app: each started, kept or stopped by update(), and fed its app's lines
by offer()."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kapal.domain.drains import parse_drain_url
from kapal.domain.logline import LogLine
from kapal.logs.drains._drain import Drain, DrainSpec
from kapal.logs.drains._http import HttpDrain
from kapal.logs.drains._syslog import SyslogDrain

logger = logging.getLogger(__name__)

BUFFER_LINES = 1024  # Logplex's drain_buffer_size
BACKOFF = (0.1, 10.0)  # seconds: first retry, longest wait between retries


class DrainSet:
    """The drains of every app, each delivering on its own task."""

    def __init__(
        self,
        notice: Callable[[LogLine], object],
        *,
        ca_file: Path | None = None,
        buffer: int = BUFFER_LINES,
        clock: Callable[[], float] = time.time,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        """`notice` gets the L10 and L14 lines, to put in the app's stream (the hub); it is
        called soon after, never from inside, offer(). A line it appends to the hub comes back
        through offer(), and a drain knows its own L10 line then (it is queued at the gap)."""
        if buffer < 1:
            raise ValueError("a drain buffer holds at least one line")
        self._notice = notice
        self._buffer = buffer
        self._clock = clock
        self._backoff = backoff
        self._ca_file = ca_file
        # Built now when there is a CA file, so that an unreadable one fails at start-up.
        self._ssl = _tls_context(ca_file) if ca_file is not None else None
        self._drains: dict[str, Drain] = {}
        self._by_app: dict[str, tuple[Drain, ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # removed drains' too, until they end
        self._closed = False

    def update(self, specs: Iterable[DrainSpec], *, app_id: str | None = None) -> None:
        """The drains are now exactly `specs`: start new ones, stop removed ones (their queued
        lines are dropped), keep unchanged ones (same spec) running. Without `app_id`, `specs`
        are the drains of every app; with it, only that app's drains are changed. Called on the
        event loop, synchronously."""
        wanted: dict[str, DrainSpec] = {}
        for spec in specs:
            if app_id is not None and spec.app_id != app_id:
                raise ValueError(f"drain {spec.drain_id} is not of app {app_id}")
            wanted[spec.drain_id] = spec
        for drain_id, drain in list(self._drains.items()):
            if app_id is not None and drain.spec.app_id != app_id:
                continue
            if wanted.get(drain_id) != drain.spec:
                del self._drains[drain_id]
                self._stop(drain)
        if not self._closed:
            for spec in wanted.values():
                if spec.drain_id not in self._drains:
                    self._start(spec)
        by_app: dict[str, list[Drain]] = {}
        for drain in self._drains.values():
            by_app.setdefault(drain.spec.app_id, []).append(drain)
        self._by_app = {app: tuple(drains) for app, drains in by_app.items()}

    def offer(self, line: LogLine) -> None:
        """Queue a line for its app's drains; a dict lookup when the app has none."""
        drains = self._by_app.get(line.app_id)
        if drains is not None:
            for drain in drains:
                drain.offer(line)

    async def close(self, grace: float = 5.0) -> None:
        """Deliver what is queued for up to `grace` seconds, then stop every drain. Lines
        offered meanwhile are taken too; after, none are, and stats() shows the final counts."""
        self._closed = True
        for drain in self._drains.values():
            drain.close_soon()
        tasks = set(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for drain in self._drains.values():
            if drain.queued:
                logger.warning(
                    "drain %s to %s stopped with %d lines undelivered",
                    drain.spec.drain_id,
                    drain.url.shown,
                    drain.queued,
                )
        self._by_app = {}

    def stats(self) -> dict[str, dict[str, int]]:
        """Per drain id: lines sent (syslog: written to the connection; HTTPS: answered with
        a 2xx), dropped because the buffer was full, and queued now (a batch being sent too)."""
        return {
            drain_id: {"sent": drain.sent, "dropped": drain.dropped, "queued": drain.queued}
            for drain_id, drain in self._drains.items()
        }

    def _start(self, spec: DrainSpec) -> None:
        try:
            url = parse_drain_url(spec.url)
        except ValueError as exc:  # the message shows the URL redacted
            logger.warning("drain %s not started: %s", spec.drain_id, exc)
            return
        kind = SyslogDrain if url.scheme.startswith("syslog") else HttpDrain
        drain = kind(spec, url, self._buffer, self._clock, self._notice, self._tls, self._backoff)
        self._drains[spec.drain_id] = drain
        task = asyncio.get_running_loop().create_task(drain.run(), name=f"drain {spec.drain_id}")
        drain.task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _stop(self, drain: Drain) -> None:
        if drain.task is not None:
            drain.task.cancel()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s stopped", task.get_name(), exc_info=task.exception())

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = _tls_context(None)
        return self._ssl


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's CAs, and those of `ca_file`; certificates and host names verified."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context
