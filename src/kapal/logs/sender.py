"""Send log lines to the log hub in the agent over its Unix datagram socket.

Sending never blocks the caller: when the hub is down or its buffer is full the line is
dropped and counted, like Heroku's logplex does under pressure.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from kapal.domain.logline import LogLine


class LogSender:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.dropped = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)

    def send(self, line: LogLine) -> None:
        try:
            self._sock.sendto(line.encode(), self.path)
        except OSError:
            self.dropped += 1

    def close(self) -> None:
        self._sock.close()
