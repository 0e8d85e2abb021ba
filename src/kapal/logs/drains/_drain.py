"""One drain's queue and the task that delivers it, whatever the transport.

Each drain has a queue (1024 lines by default) and its own task that empties it, retrying with
back-off (doubling from 0.1 s to 10 s) while the receiver is down or failing. offer() only
appends to the queue, so a drain never blocks the hub, and one drain's trouble is its own. When
the queue is full, lines are dropped and counted; once there is room again, Heroku's L10 line
goes in the queue where the gap is, and to the `notice` callback (so `kapal logs` shows it).

Certificates of TLS drains are verified against the system's CAs and an optional extra CA file;
a failure goes to `notice` as Heroku's L14 line, at most once every 10 minutes per drain.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from kapal.domain.drains import (
    DrainUrl,
    certificate_error_notice,
    octet_frame,
    overflow_notice,
    syslog_message,
)
from kapal.domain.logline import LogLine

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds for a connection, TLS handshake included
L14_INTERVAL = 600.0  # seconds between two L14 lines of a drain


@dataclass(frozen=True, slots=True)
class DrainSpec:
    drain_id: str
    app_id: str
    url: str  # full URL, possibly with credentials: never logged, DrainUrl.shown is
    token: str  # d.<uuid>, the HOSTNAME of every message the drain gets


class DeliveryError(Exception):
    """A receiver's answer that means "not delivered": a refusal or a malformed response."""


class Drain:
    """One drain's queue and the task that delivers it; subclasses know the transport."""

    def __init__(
        self,
        spec: DrainSpec,
        url: DrainUrl,
        buffer: int,
        clock: Callable[[], float],
        notice: Callable[[LogLine], object],
        tls: Callable[[], ssl.SSLContext],
        backoff: tuple[float, float],
    ) -> None:
        self.spec = spec
        self.url = url
        self.maxsize = buffer
        self.sent = 0
        self.dropped = 0
        self.closing = False
        self.task: asyncio.Task[None] | None = None
        self._queue: deque[LogLine] = deque()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._clock = clock
        self._notice = notice
        self._tls = tls
        self._backoff = backoff
        self._pending_drops = 0
        self._drops_since = 0.0
        self._echoes: deque[LogLine] = deque(maxlen=4)  # our L10 lines, until the hub echoes them
        self._failing = False
        self._l14_at: float | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    # the queue, fed by the hub

    def offer(self, line: LogLine) -> None:
        """Queue a line of the drain's app; never blocks or raises."""
        if self._echoes and line in self._echoes:
            # Our own L10 line, back from the hub through `notice`: it is queued already, at
            # the gap it tells of.
            self._echoes.remove(line)
            return
        if len(self._queue) >= self.maxsize:
            # Still full while lines are being dropped: only delivery frees room, and then puts
            # the L10 line in first, where the gap is.
            self._drop()
            return
        self._queue.append(line)
        self._wake.set()

    def close_soon(self) -> None:
        """Deliver what is queued, then end."""
        self.closing = True
        self._wake.set()

    def _drop(self) -> None:
        if not self._pending_drops:
            self._drops_since = self._clock()
        self._pending_drops += 1
        self.dropped += 1

    def _put_notice(self) -> None:
        line = overflow_notice(
            self.spec.app_id, self._pending_drops, self._drops_since, self._clock()
        )
        self._pending_drops = 0
        self._queue.append(line)
        self._echoes.append(line)
        self._wake.set()
        self._report(line)

    def _report(self, line: LogLine) -> None:
        # Never called back from inside offer(): the hub is in the middle of appending a line,
        # and the notice goes back into the hub.
        self._loop.call_soon(self._call_notice, line)

    def _call_notice(self, line: LogLine) -> None:
        try:
            self._notice(line)
        except Exception:
            logger.exception("drain %s: the notice callback failed", self.spec.drain_id)

    def _peek(self, limit: int) -> tuple[bytes, int]:
        """Frames of the oldest queued lines, at most `limit` bytes unless one line is more."""
        token = self.spec.token
        parts: list[bytes] = []
        size = 0
        for line in self._queue:
            frame = octet_frame(syslog_message(line, token))
            if parts and size + len(frame) > limit:
                break
            parts.append(frame)
            size += len(frame)
        return b"".join(parts), len(parts)

    def _done(self, count: int) -> None:
        """The oldest `count` lines are delivered: they leave the queue."""
        for _ in range(count):
            self._queue.popleft()
        self.sent += count
        if self._pending_drops and len(self._queue) < self.maxsize:
            self._put_notice()
        if self._failing:
            self._failing = False
            logger.info("drain %s to %s delivers again", self.spec.drain_id, self.url.shown)

    async def _wait_for_lines(self) -> bool:
        """True once lines are queued; False when closing with none left."""
        while not self._queue:
            if self.closing:
                return False
            self._wake.clear()
            await self._wake.wait()
        return True

    # delivery

    async def run(self) -> None:
        """Deliver until cancelled, or until closing and the queue is empty."""
        first, longest = self._backoff
        delay = first
        try:
            while await self._wait_for_lines():
                sent = self.sent
                try:
                    await self._deliver()
                except Exception as exc:  # the network's, the receiver's, or a bug: retried
                    self._trouble(exc)
                if self.sent > sent:
                    delay = first
                if self._queue:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, longest)
        finally:
            self._hang_up()

    async def _deliver(self) -> None:
        """Connect and deliver until the queue is empty or the connection ends."""
        raise NotImplementedError

    def _hang_up(self) -> None:
        """Close any connection kept between deliveries."""

    def _trouble(self, exc: Exception) -> None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            self._certificate_failed(exc)
        drain, shown = self.spec.drain_id, self.url.shown
        if self._failing:
            logger.debug("drain %s to %s still failing: %s", drain, shown, _describe(exc))
        elif isinstance(exc, OSError | DeliveryError):
            logger.warning("drain %s to %s failing, will retry: %s", drain, shown, _describe(exc))
        else:
            logger.error("drain %s to %s failed, will retry", drain, shown, exc_info=exc)
        self._failing = True

    def _certificate_failed(self, exc: ssl.SSLCertVerificationError) -> None:
        now = self._loop.time()
        if self._l14_at is not None and now - self._l14_at < L14_INTERVAL:
            return
        self._l14_at = now
        error = exc.verify_message or exc.reason or str(exc)
        self._report(certificate_error_notice(self.spec.app_id, error, self.url, self._clock()))

    def _tls_context(self) -> ssl.SSLContext | None:
        return self._tls() if self.url.tls else None


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
