"""Streaming an attached one-off dyno: greeting, stdin -> socket, socket -> stdout, and the exit
status marker the CLI appends to the command (kapal.client.rendezvous).

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

from kapal.client.rendezvous import EOT, ExitStatusFilter

CHUNK = 65536


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
