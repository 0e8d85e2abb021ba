"""syslog:// and syslog+tls:// drains: RFC 5424 messages in RFC 6587 octet-counted frames over
one TCP (or TLS) connection.

Syslog has no acknowledgements: a line counts as sent once it is written to the connection.
- A receiver that stops the way a well-behaved syslog server does (it shuts its side down, reads
  until our side ends, then closes) loses nothing: seeing the end of its side, the drain stops
  writing, closes its own side once what it wrote has gone out, and reconnects later with the
  lines not yet written.
- A receiver that crashes, or a connection that is reset, loses the lines the kernel had already
  accepted and the receiver never read. Nothing tells which those were, and writing them again
  would repeat the ones it did read, so they are not sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kapal.logs.drains._drain import CONNECT_TIMEOUT, DeliveryError, Drain

logger = logging.getLogger(__name__)

WRITE_TIMEOUT = 60.0  # seconds a syslog receiver may leave our writes unread
_WRITE_CHUNK = 64 * 1024  # bytes written to a syslog connection at a time


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


class SyslogDrain(Drain):
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
            raise DeliveryError("the receiver closed the connection at once")
        logger.debug("drain %s: the receiver closed the connection", self.spec.drain_id)
