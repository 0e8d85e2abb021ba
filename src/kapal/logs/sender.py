"""Send log lines to the log hub in the agent over its Unix datagram socket.

Sending never blocks the caller: when the hub is down or its buffer is full the line is
dropped and counted, like Heroku's logplex does under pressure.

A sender given an event loop (the router's) batches: the lines of one turn of the loop go out
together, newline-separated in as few datagrams as fit, once that turn's callbacks are done.
Each datagram wakes the hub, so one per line would cost a busy router a wake-up per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from kapal.domain.logline import LogLine

# Under the 64 KiB a datagram receiver is commonly given (libuv's, under uvloop).
MAX_DATAGRAM = 60_000


class LogSender:
    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.path = str(path)
        self.dropped = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self._loop = loop
        self._batch: list[bytes] = []

    def send(self, line: LogLine) -> None:
        data = line.encode()
        if self._loop is None:
            self._send(data, 1)
            return
        if not self._batch:
            self._loop.call_soon(self.flush)
        self._batch.append(data)

    def flush(self) -> None:
        """Send the lines batched so far."""
        batch, self._batch = self._batch, []
        start = size = 0
        for end, data in enumerate(batch):
            if size and size + len(data) >= MAX_DATAGRAM:
                self._send(b"\n".join(batch[start:end]), end - start)
                start, size = end, 0
            size += len(data) + 1
        if size:
            self._send(b"\n".join(batch[start:]), len(batch) - start)

    def _send(self, datagram: bytes, lines: int) -> None:
        try:
            self._sock.sendto(datagram, self.path)
        except OSError:
            self.dropped += lines

    def close(self) -> None:
        self.flush()
        self._sock.close()
