"""The router process's core: listening socket, current route table, dyno connection pool,
requests waiting for a boot, periodic upkeep and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from kapal.router.accesslog import LogSink, format_message, router_line
from kapal.router.client import ClientConnection
from kapal.router.codes import RouterError
from kapal.router.config import RouterConfig
from kapal.router.exchange import Exchange
from kapal.router.pages import ErrorPages
from kapal.router.pool import UpstreamPool
from kapal.router.request_head import forwarded_tail
from kapal.router.routes import HostIndex, RouteSource, RouteTable

logger = logging.getLogger(__name__)
_monotonic = time.monotonic


class WakeHints(Protocol):
    """A source of "something changed" hints (kapal.store.notify.WakeListener)."""

    async def wait(self, timeout: float) -> bool: ...


def listening_socket(host: str, port: int, *, reuse_port: bool, backlog: int) -> socket.socket:
    """A bound, listening TCP socket; SO_REUSEPORT lets several router processes share it."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Router:
    """An HTTP reverse proxy routing `NAME.<apps_domain>` to the app's web dynos."""

    def __init__(self, config: RouterConfig, source: RouteSource, sink: LogSink) -> None:
        self.config = config
        self.source = source
        self.sink = sink
        self.index = HostIndex(RouteTable(), config.apps_domain)
        self.pool = UpstreamPool(
            idle_timeout=config.upstream_idle_timeout,
            max_idle=config.max_idle_per_backend,
            connect_timeout=config.connect_timeout,
            max_head=config.max_response_head,
            write_high_water=config.write_high_water,
        )
        self.pages = ErrorPages()
        self.clients: set[ClientConnection] = set()
        self.parked: set[Exchange] = set()
        self.awaiting: dict[Exchange, float] = {}  # request -> deadline for its first byte
        self.closing = False
        self.port = config.port
        self.forwarded_tail = forwarded_tail(config.port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._refreshing: asyncio.Lock | None = None
        self._drained = asyncio.Event()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "Router.start() first"
        return self._loop

    async def start(self) -> None:
        """Load the first route table and start listening."""
        self._loop = asyncio.get_running_loop()
        self._refreshing = asyncio.Lock()
        await self.refresh()
        sock = listening_socket(
            self.config.bind,
            self.config.port,
            reuse_port=self.config.reuse_port,
            backlog=self.config.backlog,
        )
        self.port = sock.getsockname()[1]
        self.forwarded_tail = forwarded_tail(self.port)
        self._server = await self._loop.create_server(
            lambda: ClientConnection(self), sock=sock, backlog=self.config.backlog
        )
        self.spawn(self._expire_forever())
        logger.info("router listening on %s:%d", self.config.bind, self.port)

    # routes

    def install(self, table: RouteTable) -> None:
        """Replace the route table; requests waiting for a dyno look again."""
        self.index = HostIndex(table, self.config.apps_domain)
        for exchange in list(self.parked):
            exchange.reroute()

    async def refresh(self) -> None:
        """Read a fresh snapshot from the source (in a worker thread) and install it."""
        assert self._refreshing is not None and self._loop is not None
        async with self._refreshing:
            table = await self._loop.run_in_executor(None, self.source)
        self.install(table)

    async def run(self, wake: WakeHints | None = None, interval: float = 1.0) -> None:
        """Keep the route table fresh (on hints and every `interval`) and sweep idle
        connections, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._refresh_forever(wake, interval), name="router-refresh")
            group.create_task(self._sweep_forever(), name="router-sweep")

    async def _refresh_forever(self, wake: WakeHints | None, interval: float) -> None:
        while True:
            if wake is None:
                await asyncio.sleep(interval)
            else:
                await wake.wait(interval)
            try:
                await self.refresh()
            except Exception:
                # Keep serving the last good table: a store hiccup must not stop traffic.
                logger.exception("route table refresh failed")

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval)
            self.sweep()

    async def _expire_forever(self) -> None:
        tick = min(0.25, self.config.request_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            self.expire()

    def expire(self) -> None:
        """Fail the requests whose first response byte is overdue (H12)."""
        now = _monotonic()
        for exchange in [ex for ex, deadline in self.awaiting.items() if deadline <= now]:
            if self.awaiting.pop(exchange, None) is not None:
                exchange.request_timed_out()

    def sweep(self) -> None:
        """Close idle client connections and stale pooled dyno connections."""
        now = _monotonic()
        timeout = self.config.client_idle_timeout
        for client in list(self.clients):
            if client.idle_expired(now, timeout):
                client.transport.close()
        self.pool.sweep()

    # used by connections and exchanges

    def client_gone(self, client: ClientConnection) -> None:
        self.clients.discard(client)
        if self.closing and not self.clients:
            self._drained.set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a per-request coroutine (a dyno connect) as an owned task."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("router task failed", exc_info=task.exception())

    def log(self, exchange: Exchange, error: RouterError | None) -> None:
        route = exchange.route
        if route is None:
            return
        now = _monotonic()
        connect = exchange.connect_ms
        if connect is None and exchange.t_route:
            connect = int((now - exchange.t_route) * 1000)
        service = int((now - exchange.t_sent) * 1000) if exchange.t_sent else None
        message = format_message(
            error,
            exchange.method.decode("ascii", "replace"),
            exchange.url.decode("ascii", "backslashreplace"),
            exchange.host.split(b":", 1)[0].lower().decode("ascii", "backslashreplace"),
            exchange.request_id.decode("ascii", "replace"),
            exchange.fwd.decode("ascii", "backslashreplace"),
            exchange.dyno,
            connect,
            service,
            exchange.status,
            exchange.bytes_out,
        )
        try:
            # Stamped when the request ends, as Heroku does: the stream stays in time order.
            self.sink.send(router_line(route.app_id, message, time.time()))
        except Exception:
            logger.exception("router log line dropped")

    # shutdown

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish for up to `grace` seconds, then end
        the rest (H99) and close every connection."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            if client.active is None and not client.queue and client.tunnel is None:
                client.transport.close()
        if self.clients:
            # Each client connection closes itself after its response (closing is set).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), grace)
        for client in list(self.clients):
            if client.active is not None:
                client.active.shutdown()
            client.transport.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pool.close()  # after the connect tasks: a late connect may have pooled its socket
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
