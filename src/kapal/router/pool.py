"""Keep-alive connections to dynos, pooled per dyno port."""

from __future__ import annotations

import asyncio
import time

from kapal.router.upstream import UpstreamConnection

_monotonic = time.monotonic


class UpstreamPool:
    """Idle keep-alive connections per dyno port, most recently used first."""

    def __init__(
        self,
        *,
        idle_timeout: float,
        max_idle: int,
        connect_timeout: float,
        max_head: int,
        write_high_water: int,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.max_head = max_head
        self.write_high_water = write_high_water
        self._idle: dict[int, list[UpstreamConnection]] = {}

    def acquire(self, port: int) -> UpstreamConnection | None:
        idle = self._idle.get(port)
        if not idle:
            return None
        oldest = _monotonic() - self.idle_timeout
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.idle_since > oldest and not conn.transport.is_closing():
                conn.reused = True
                return conn
            conn.close()
        return None

    def release(self, conn: UpstreamConnection) -> None:
        conn.exchange = None
        if conn.closed:
            return
        conn.resume()
        idle = self._idle.get(conn.port)
        if idle is None:
            idle = self._idle[conn.port] = []
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = _monotonic()
        idle.append(conn)

    async def connect(self, port: int) -> UpstreamConnection:
        """A new connection to a dyno; OSError (refused) or TimeoutError if it fails."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            transport, conn = await loop.create_connection(
                lambda: UpstreamConnection(port, self.max_head), "127.0.0.1", port
            )
        transport.set_write_buffer_limits(high=self.write_high_water)
        return conn

    def sweep(self) -> None:
        """Close connections idle for longer than the idle timeout."""
        oldest = _monotonic() - self.idle_timeout
        for port, idle in list(self._idle.items()):
            keep = []
            for conn in idle:
                if not conn.closed and conn.idle_since > oldest:
                    keep.append(conn)
                else:
                    conn.close()
            if keep:
                self._idle[port] = keep
            else:
                del self._idle[port]

    def idle_count(self, port: int) -> int:
        return len(self._idle.get(port, ()))

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
