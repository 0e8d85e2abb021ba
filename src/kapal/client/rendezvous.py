"""Attaching to a one-off dyno: the `rendezvous://host:port/secret` URL the API hands out."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from kapal.client.errors import KapalConnectionError

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
    """Open the plain TCP connection and present the secret (`secret\\r\\n`). The caller reads
    the agent's greeting line and then streams both ways."""
    address = f"{rendezvous.host}:{rendezvous.port}"
    try:
        sock = socket.create_connection((rendezvous.host, rendezvous.port), timeout=timeout)
    except OSError as exc:
        raise KapalConnectionError(f"rendezvous://{address}", str(exc)) from exc
    sock.settimeout(None)  # a one-off dyno may stay silent for as long as it likes
    try:
        sock.sendall(rendezvous.secret.encode() + b"\r\n")
    except OSError as exc:
        sock.close()
        raise KapalConnectionError(f"rendezvous://{address}", str(exc)) from exc
    return sock
