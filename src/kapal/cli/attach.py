"""Streaming an attached one-off dyno: greeting, stdin -> socket, socket -> stdout, and the exit
status marker the CLI appends to the command.

Protocol with the agent's rendezvous (plain TCP): the client sends `secret\\r\\n`; the agent
answers with one greeting line, then both directions are raw bytes. When stdin ends the client
sends EOT (`\\x04`, as Heroku's CLI does) and keeps the socket open until the agent closes it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import BinaryIO

MARKER = "\uffff kapal-command-exit-status: ".encode()
EOT = b"\x04"
CHUNK = 65536


def with_exit_status(command: str) -> str:
    """The command the dyno runs, so that its exit status comes back on the stream. The space
    before `;` keeps `kapal run worker` meaning the Procfile's worker command (the API
    substitutes a process type only when it is the first word)."""
    return f'{command} ; echo "\uffff kapal-command-exit-status: $?"'


class ExitStatusFilter:
    """Passes output through, except the marker line, whose number becomes `status`.
    Holds back only what could be the start of a marker split across reads."""

    def __init__(self) -> None:
        self.status: int | None = None
        self._pending = b""
        self._in_marker = False

    def feed(self, data: bytes) -> bytes:
        self._pending += data
        out = bytearray()
        while True:
            if self._in_marker:
                newline = self._pending.find(b"\n")
                if newline < 0:
                    return bytes(out)
                self._take_status(self._pending[:newline])
                self._pending = self._pending[newline + 1 :]
                continue
            found = self._pending.find(MARKER)
            if found >= 0:
                out += self._pending[:found]
                self._pending = self._pending[found + len(MARKER) :]
                self._in_marker = True
                continue
            keep = _marker_prefix_len(self._pending)
            cut = len(self._pending) - keep
            out += self._pending[:cut]
            self._pending = self._pending[cut:]
            return bytes(out)

    def finish(self) -> bytes:
        """The stream ended: whatever was held back (or the status of an unterminated marker)."""
        rest, self._pending = self._pending, b""
        if self._in_marker:
            self._take_status(rest)
            return b""
        return rest

    def _take_status(self, text: bytes) -> None:
        digits = text.strip()
        if digits.isdigit():
            self.status = int(digits)


def _marker_prefix_len(data: bytes) -> int:
    """Length of the longest suffix of `data` that is a proper prefix of MARKER."""
    for size in range(min(len(data), len(MARKER) - 1), 0, -1):
        if MARKER.startswith(data[-size:]):
            return size
    return 0


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


def _copy_stdin(stdin: BinaryIO, sock: socket.socket) -> None:
    read = _reader(stdin)
    try:
        while chunk := read(CHUNK):
            sock.sendall(chunk)
        sock.sendall(EOT)
    except (OSError, ValueError):
        pass  # the dyno ended or stdin was closed: nothing more to send


def pump(sock: socket.socket, first: bytes, stdin: BinaryIO | None, stdout: BinaryIO) -> int | None:
    """Stream until the agent closes the connection; returns the command's exit status, or
    None if the marker never came."""
    if stdin is not None:
        # A daemon thread: a terminal read cannot be interrupted, and must not keep us alive.
        threading.Thread(target=_copy_stdin, args=(stdin, sock), daemon=True).start()
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
