"""https:// (and http://, for local use) drains: batches of up to 100 KB, POSTed as Logplex does
(`application/logplex-1`) over a keep-alive connection.

A batch is done on a 2xx answer only; until then the same batch, with the same
Logplex-Frame-Id, is retried, so that a receiver that got it before can drop the repeat. Its
lines stay in the queue, counting against its size, until then.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

from kapal.domain.drains import logplex_request_head
from kapal.logs.drains._drain import CONNECT_TIMEOUT, DeliveryError, Drain

BATCH_BYTES = 102_400  # Logplex's HTTP drain batch target
REQUEST_TIMEOUT = 30.0  # seconds for a batch to be sent and answered
_READ_SIZE = 64 * 1024


class _NoResponse(ConnectionError):
    """The connection ended before any byte of a response."""


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
            raise DeliveryError("the receiver answered with a protocol upgrade") from None
        except HttpParserError as exc:
            raise DeliveryError(f"malformed HTTP response: {exc}") from None
    return response.status, response.keep_alive


class HttpDrain(Drain):
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
                raise DeliveryError(f"the receiver answered HTTP {status}")
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
