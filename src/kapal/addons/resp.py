"""A small RESP2 client: what Kapal says to its own Redis servers (AUTH, PING, INFO, CONFIG SET).

Four commands do not justify a dependency; apps bring their own clients.
"""

from __future__ import annotations

import socket
from typing import Self, TypeAlias

Reply: TypeAlias = "str | int | bytes | list[Reply] | None"


class RespError(Exception):
    """The server answered with an error (`-ERR ...`, `-WRONGPASS ...`, `-NOPERM ...`)."""


def encode(*args: str | bytes | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespConnection:
    """One connection; `call` sends a command and returns its reply. Errors that break the
    connection (refused, closed, timed out, garbled) are OSErrors."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._file = self._sock.makefile("rb")

    def call(self, *args: str | bytes | int) -> Reply:
        self._sock.sendall(encode(*args))
        return self._read()

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _read(self) -> Reply:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("the Redis server closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return _number(rest)
        if kind == b"$":
            size = _number(rest)
            if size < 0:
                return None
            data = self._file.read(size + 2)
            if len(data) != size + 2:
                raise ConnectionError("the Redis server closed the connection")
            return data[:-2]
        if kind == b"*":
            count = _number(rest)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise ConnectionError(f"not a RESP reply: {line[:40]!r}")


def _number(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConnectionError(f"not a RESP number: {text[:40]!r}") from None


def parse_info(text: str) -> dict[str, str]:
    """INFO's `key:value` lines (section headers and blank lines skipped)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith("#"):
            fields[key] = value
    return fields
