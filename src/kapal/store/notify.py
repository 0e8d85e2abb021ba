"""Wake-up hints between processes: a datagram on a Unix socket in the data directory.

A hint carries no data; the woken loop re-reads the full state from the store. A lost hint
costs latency, never correctness, so sending never blocks and never fails loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path


def notify(*sockets: Path) -> None:
    """Send a wake-up hint to each listening socket; missing listeners are ignored."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for path in sockets:
            with contextlib.suppress(OSError):
                sock.sendto(b"wake", str(path))


class WakeListener:
    """Receives hints on a Unix datagram socket and sets an asyncio.Event."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.event = asyncio.Event()
        self._sock: socket.socket | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.path))
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        assert self._sock is not None
        with contextlib.suppress(BlockingIOError):
            while self._sock.recv(64):
                self.event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait for a hint or the timeout; True if a hint arrived."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self.event.clear()
        return True

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
