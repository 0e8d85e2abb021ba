"""Log drain delivery: every line of an app's stream also goes to each of the app's drains.

Each drain has a queue (1024 lines by default) and its own task that empties it, retrying with
back-off (doubling from 0.1 s to 10 s) while the receiver is down or failing. offer() only
appends to the queue, so a drain never blocks the hub, and one drain's trouble is its own. When
the queue is full, lines are dropped and counted; once there is room again, Heroku's L10 line
goes in the queue where the gap is, and to the `notice` callback (so `kapal logs` shows it).

syslog:// and syslog+tls:// drains get RFC 5424 messages in RFC 6587 octet-counted frames over
one TCP (or TLS) connection. Syslog has no acknowledgements: a line counts as sent once it is
written to the connection.
- A receiver that stops the way a well-behaved syslog server does (it shuts its side down, reads
  until our side ends, then closes) loses nothing: seeing the end of its side, the drain stops
  writing, closes its own side once what it wrote has gone out, and reconnects later with the
  lines not yet written.
- A receiver that crashes, or a connection that is reset, loses the lines the kernel had already
  accepted and the receiver never read. Nothing tells which those were, and writing them again
  would repeat the ones it did read, so they are not sent again.

https:// (and http://, for local use) drains get batches of up to 100 KB, POSTed as Logplex does
(`application/logplex-1`) over a keep-alive connection. A batch is done on a 2xx answer only;
until then the same batch, with the same Logplex-Frame-Id, is retried, so that a receiver that
got it before can drop the repeat. Its lines stay in the queue, counting against its size, until
then.

Certificates of TLS drains are verified against the system's CAs and an optional extra CA file;
a failure goes to `notice` as Heroku's L14 line, at most once every 10 minutes per drain.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from kapal.domain.drains import (
    DrainUrl,
    certificate_error_notice,
    logplex_request_head,
    octet_frame,
    overflow_notice,
    parse_drain_url,
    syslog_message,
)
from kapal.domain.logline import LogLine

logger = logging.getLogger(__name__)

BUFFER_LINES = 1024  # Logplex's drain_buffer_size
BATCH_BYTES = 102_400  # Logplex's HTTP drain batch target
BACKOFF = (0.1, 10.0)  # seconds: first retry, longest wait between retries
CONNECT_TIMEOUT = 10.0  # seconds for a connection, TLS handshake included
REQUEST_TIMEOUT = 30.0  # seconds for a batch to be sent and answered
WRITE_TIMEOUT = 60.0  # seconds a syslog receiver may leave our writes unread
L14_INTERVAL = 600.0  # seconds between two L14 lines of a drain
_WRITE_CHUNK = 64 * 1024  # bytes written to a syslog connection at a time
_READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class DrainSpec:
    drain_id: str
    app_id: str
    url: str  # full URL, possibly with credentials: never logged, DrainUrl.shown is
    token: str  # d.<uuid>, the HOSTNAME of every message the drain gets


class _DeliveryError(Exception):
    """A receiver's answer that means "not delivered": a refusal or a malformed response."""


class _NoResponse(ConnectionError):
    """The connection ended before any byte of a response."""


class _Drain:
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
        elif isinstance(exc, OSError | _DeliveryError):
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


# syslog


class _SyslogConnection(asyncio.Protocol):
    """A connection we only write to; it ends when the receiver closes its side."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.ended = False
        self.error: Exception | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self._wake = wake
        self._writable: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        pass  # a syslog receiver has nothing to say; whatever it sends is ignored

    def eof_received(self) -> bool:
        # False: the transport sends what it holds, then closes (its end, which the receiver
        # waits for). Nothing more is written to it.
        self.ended = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        if not self.lost.done():
            self.lost.set_result(None)
        self.resume_writing()
        self._wake()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None:
            if not self._writable.done():
                self._writable.set_result(None)
            self._writable = None

    async def writable(self) -> None:
        if self._writable is not None:
            await self._writable


class _SyslogDrain(_Drain):
    async def _deliver(self) -> None:
        tls = self._tls_context()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            transport, conn = await self._loop.create_connection(
                lambda: _SyslogConnection(self._wake.set),
                self.url.host,
                self.url.port,
                ssl=tls,
                server_hostname=self.url.host if tls else None,
            )
        try:
            await self._write(transport, conn)
        finally:
            if not conn.lost.done():
                transport.abort()

    async def _write(self, transport: asyncio.Transport, conn: _SyslogConnection) -> None:
        written = False
        while not conn.ended:
            if not self._queue:
                if self.closing:
                    transport.close()  # after what was written has gone out
                    await conn.lost
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            data, count = self._peek(_WRITE_CHUNK)
            transport.write(data)
            written = True
            self._done(count)
            async with asyncio.timeout(WRITE_TIMEOUT):
                await conn.writable()
        # The receiver closed its side: ours closes once what was written has gone out.
        async with asyncio.timeout(WRITE_TIMEOUT):
            await conn.lost
        if conn.error is not None:
            raise conn.error
        if not written:
            # Lines were waiting (that is when a drain connects): not a receiver stopping.
            raise _DeliveryError("the receiver closed the connection at once")
        logger.debug("drain %s: the receiver closed the connection", self.spec.drain_id)


# HTTPS


@dataclass(frozen=True, slots=True)
class _Batch:
    frame_id: str  # the same on every retry of the batch
    body: bytes
    count: int  # lines, the oldest of the queue


class _Response:
    """httptools callbacks for one response; only its status and whether it ended matter."""

    def __init__(self) -> None:
        self.parser = HttpResponseParser(self)
        self.status = 0
        self.started = False
        self.head_done = False
        self.done = False
        self.keep_alive = False

    def on_message_begin(self) -> None:
        self.started = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.head_done = self.status >= 200  # 1xx: an interim answer, the real one follows

    def on_message_complete(self) -> None:
        if self.head_done:
            self.done = True
            self.keep_alive = self.parser.should_keep_alive()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of the response, read to its end, and whether the connection stays open."""
    response = _Response()
    while not response.done:
        data = await reader.read(_READ_SIZE)
        if not data:
            if response.head_done:
                return response.status, False  # a body that ends with the connection
            if response.started:
                raise ConnectionError("the connection ended in the middle of a response")
            raise _NoResponse("the connection ended without a response")
        try:
            response.parser.feed_data(data)
        except HttpParserUpgrade:
            raise _DeliveryError("the receiver answered with a protocol upgrade") from None
        except HttpParserError as exc:
            raise _DeliveryError(f"malformed HTTP response: {exc}") from None
    return response.status, response.keep_alive


class _HttpDrain(_Drain):
    _batch: _Batch | None = None  # being sent, or to be sent again
    _conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None  # kept alive

    async def _deliver(self) -> None:
        while self._queue:
            batch = self._batch
            if batch is None:
                body, count = self._peek(BATCH_BYTES)
                batch = self._batch = _Batch(uuid.uuid4().hex, body, count)
            status = await self._post(batch)
            if not 200 <= status < 300:
                raise _DeliveryError(f"the receiver answered HTTP {status}")
            self._batch = None
            self._done(batch.count)

    async def _post(self, batch: _Batch) -> int:
        head = logplex_request_head(
            self.url, self.spec.token, batch.frame_id, batch.count, len(batch.body)
        )
        if self._conn is not None:
            reader, writer = self._conn
            if reader.at_eof() or writer.is_closing():
                self._hang_up()
        reused = self._conn is not None
        try:
            return await self._exchange(head + batch.body)
        except ConnectionError:
            if not reused:
                raise
        # The receiver closed the kept-alive connection as the batch went out: it saw nothing
        # of it, so one more try on a new connection, without waiting.
        return await self._exchange(head + batch.body)

    async def _exchange(self, request: bytes) -> int:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if self._conn is None:
                    self._conn = await self._connect()
                reader, writer = self._conn
                writer.write(request)
                await writer.drain()
                status, keep_alive = await _read_response(reader)
        except BaseException:
            self._hang_up(abort=True)
            raise
        if not keep_alive:
            self._hang_up()
        return status

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        tls = self._tls_context()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            return await asyncio.open_connection(
                self.url.host,
                self.url.port,
                ssl=tls,
                server_hostname=self.url.host if tls else None,
                limit=_READ_SIZE,
            )

    def _hang_up(self, abort: bool = False) -> None:
        if self._conn is not None:
            writer = self._conn[1]
            self._conn = None
            if abort:
                writer.transport.abort()
            else:
                writer.close()


# the drains of every app


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
        self._drains: dict[str, _Drain] = {}
        self._by_app: dict[str, tuple[_Drain, ...]] = {}
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
        by_app: dict[str, list[_Drain]] = {}
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
        kind = _SyslogDrain if url.scheme.startswith("syslog") else _HttpDrain
        drain = kind(spec, url, self._buffer, self._clock, self._notice, self._tls, self._backoff)
        self._drains[spec.drain_id] = drain
        task = asyncio.get_running_loop().create_task(drain.run(), name=f"drain {spec.drain_id}")
        drain.task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _stop(self, drain: _Drain) -> None:
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
