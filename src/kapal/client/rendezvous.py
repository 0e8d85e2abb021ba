"""Attaching to a one-off dyno: the `rendezvous://host:port/secret` URL the API hands out,
and the exit status the agent reports at the end of the stream (kapal.domain.rendezvous)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from kapal.client.errors import KapalConnectionError
from kapal.domain.rendezvous import MARKER, secret_line

CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Rendezvous:
    host: str
    port: int
    secret: str


def parse_attach_url(url: str) -> Rendezvous:
    """Split `rendezvous://host:port/secret`; ValueError if it is not one."""
    parts = urlsplit(url)
    if parts.scheme != "rendezvous" or not parts.hostname or parts.port is None:
        raise ValueError(f"not a rendezvous URL: {url!r}")
    secret = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    if not secret:
        raise ValueError(f"rendezvous URL without a secret: {url!r}")
    return Rendezvous(parts.hostname, parts.port, secret)


def connect(rendezvous: Rendezvous, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """Open the plain TCP connection and present the secret, asking for the exit status. The
    caller reads the agent's greeting line and then streams both ways."""
    address = f"{rendezvous.host}:{rendezvous.port}"
    try:
        sock = socket.create_connection((rendezvous.host, rendezvous.port), timeout=timeout)
    except OSError as exc:
        raise KapalConnectionError(f"rendezvous://{address}", str(exc)) from exc
    sock.settimeout(None)  # a one-off dyno may stay silent for as long as it likes
    try:
        sock.sendall(secret_line(rendezvous.secret, exit_status=True))
    except OSError as exc:
        sock.close()
        raise KapalConnectionError(f"rendezvous://{address}", str(exc)) from exc
    return sock


class ExitStatusFilter:
    """Passes output through, except the status line the agent ends it with, whose number
    becomes `status`. Holds back only what could be the start of one split across reads."""

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
