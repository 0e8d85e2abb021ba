"""Streaming an attached one-off dyno: greeting, stdin -> socket, socket -> stdout, and the exit
status the agent reports at the end (kapal.domain.rendezvous has the protocol).

The client sends `secret exit-status\\r\\n`; the agent answers with one greeting line, then
both directions are raw bytes. When stdin ends the client sends EOT (`\\x04`, as Heroku's CLI
does) and keeps the socket open until the agent closes it.
"""

from __future__ import annotations

import collections
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from kapal.client.rendezvous import ExitStatusFilter
from kapal.domain.rendezvous import EOT

CHUNK = 65536
CTRL_C = b"\x03"


class Upstream:
    """The sending side, shared by the stdin thread and the resize handler: one message at a
    time, so that a resize never lands inside what was typed."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.hung_up = False

    def send(self, data: bytes) -> None:
        with self._lock:
            self._sock.sendall(data)

    def hang_up(self) -> None:
        """Leave the dyno (the agent then sends it SIGHUP); the stream ends."""
        self.hung_up = True
        self._sock.shutdown(socket.SHUT_RDWR)


class Interrupts:
    """Heroku's way out of a terminal whose dyno no longer answers: Ctrl-C (which otherwise
    goes to the dyno) four times within a second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._times: collections.deque[float] = collections.deque()

    def typed(self, data: bytes) -> bool:
        """Whether `data` makes it four Ctrl-C within a second."""
        now = self._clock()
        self._times.extend([now] * data.count(CTRL_C))
        while self._times and now - self._times[0] > 1.0:
            self._times.popleft()
        return len(self._times) >= 4


def skip_greeting(sock: socket.socket) -> bytes | None:
    """Read and drop the agent's first line; returns what followed it in the same reads,
    or None if the connection closed first."""
    received = b""
    while b"\n" not in received:
        chunk = sock.recv(CHUNK)
        if not chunk:
            return None
        received += chunk
    return received.split(b"\n", 1)[1]


def _reader(stdin: BinaryIO) -> Callable[[int], bytes]:
    """Read the file descriptor itself when there is one: a thread blocked in a buffered
    read holds the buffer's lock, and the interpreter aborts at exit when it finds it held."""
    try:
        fd = stdin.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation: an in-memory stream
        return getattr(stdin, "read1", stdin.read)
    return lambda size: os.read(fd, size)


def _copy_stdin(stdin: BinaryIO, upstream: Upstream, interrupts: Interrupts | None) -> None:
    read = _reader(stdin)
    try:
        while chunk := read(CHUNK):
            upstream.send(chunk)
            if interrupts is not None and interrupts.typed(chunk):
                upstream.hang_up()
                return
        upstream.send(EOT)
    except (OSError, ValueError):
        pass  # the dyno ended or stdin was closed: nothing more to send


def pump(
    sock: socket.socket,
    first: bytes,
    stdin: BinaryIO | None,
    stdout: BinaryIO,
    upstream: Upstream | None = None,
    interrupts: Interrupts | None = None,
) -> int | None:
    """Stream until the agent closes the connection; returns the command's exit status, or
    None if none was reported. `interrupts`: hang up on four quick Ctrl-C from stdin."""
    if stdin is not None:
        # A daemon thread: a terminal read cannot be interrupted, and must not keep us alive.
        args = (stdin, upstream or Upstream(sock), interrupts)
        threading.Thread(target=_copy_stdin, args=args, daemon=True).start()
    status = ExitStatusFilter()
    data = first
    while True:
        if data:
            stdout.write(status.feed(data))
            stdout.flush()
        data = sock.recv(CHUNK)
        if not data:
            break
    stdout.write(status.finish())
    stdout.flush()
    return status.status
