"""Log lines from other processes (router, API) arrive as datagrams on a Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from pathlib import Path

from kapal.domain.logline import SOURCES, LogLine
from kapal.logs.hub import LogHub

logger = logging.getLogger(__name__)

_LATEST_TIME = 253402300799.0  # 9999-12-31T23:59:59Z: the last second a timestamp can show


def decode_datagram(data: bytes) -> LogLine:
    """One datagram from LogSender; ValueError when it is not a line the hub can show."""
    try:
        line = LogLine.decode(data)
    # JSON errors are ValueErrors, wrong shapes Type/ValueErrors, deep nesting RecursionError.
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError(f"not an encoded log line: {exc}") from None
    if not line.app_id or not line.dyno:
        raise ValueError("app id and dyno must not be empty")
    if line.source not in SOURCES:
        raise ValueError(f"unknown source {line.source!r}")
    # JSON allows NaN and huge numbers; either would break formatting the line later.
    if not (math.isfinite(line.time) and 0 <= line.time <= _LATEST_TIME):
        raise ValueError(f"time {line.time!r} out of range")
    return line


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, ingest: LogIngest) -> None:
        self.ingest = ingest

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.ingest.receive(data)

    def error_received(self, exc: Exception) -> None:
        logger.warning("log socket error: %s", exc)


class LogIngest:
    """Binds `path` (replacing a stale socket file) and appends every valid line to the hub."""

    def __init__(self, hub: LogHub, path: Path, receive_buffer: int = 4 << 20) -> None:
        self.hub = hub
        self.path = path
        self.receive_buffer = receive_buffer
        self.received = 0
        self.malformed = 0
        self._transport: asyncio.DatagramTransport | None = None

    def receive(self, data: bytes) -> None:
        # A batching LogSender puts several lines in one datagram; JSON escapes newlines.
        for part in data.split(b"\n") if b"\n" in data else (data,):
            self._receive_line(part)

    def _receive_line(self, data: bytes) -> None:
        try:
            line = decode_datagram(data)
        except ValueError as exc:
            self.malformed += 1
            # The first one says what is wrong; after that the counter tells how many.
            log = logger.warning if self.malformed == 1 else logger.debug
            log("ignoring malformed log datagram (%d so far): %s", self.malformed, exc)
            return
        self.received += 1
        self.hub.append(line)

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(OSError):
                # Bursts of dyno-independent lines (router) must not be dropped by the kernel.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            sock.bind(str(self.path))
            # Only Kapal's own processes may write lines into any app's stream.
            os.chmod(self.path, 0o600)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self._transport = transport
        logger.info("log hub listening on %s", self.path)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def run(self) -> None:
        """Start, then serve until cancelled (for the agent's TaskGroup)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.close()
