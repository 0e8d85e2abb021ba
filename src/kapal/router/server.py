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
from kapal.router.activity import Activity
from kapal.router.client import ClientConnection
from kapal.router.codes import H15, RouterError
from kapal.router.config import RouterConfig
from kapal.router.exchange import Exchange
from kapal.router.metrics import RequestCounter
from kapal.router.pages import ErrorPages
from kapal.router.pool import UpstreamPool
from kapal.router.request_head import forwarded_tail
from kapal.router.routes import HostIndex, RouteSource, RouteTable
from kapal.router.tls import SniCertificates
from kapal.router.upstream import UpstreamConnection

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

    def __init__(
        self,
        config: RouterConfig,
        source: RouteSource,
        sink: LogSink,
        tls: SniCertificates | None = None,  # HTTPS on config.tls_port with these
        activity: Activity | None = None,  # where each app's last request is recorded
    ) -> None:
        self.config = config
        self.activity = activity or Activity()
        self.source = source
        self.sink = sink
        self.tls = tls
        self.tls_port = config.tls_port
        self.tls_forwarded_tail = forwarded_tail(config.tls_port, b"https")
        self._tls_server: asyncio.AbstractServer | None = None
        self.index = HostIndex(RouteTable(), config.apps_domain)
        self.pool = UpstreamPool(
            idle_timeout=config.upstream_idle_timeout,
            max_idle=config.max_idle_per_backend,
            connect_timeout=config.connect_timeout,
            max_head=config.max_response_head,
            write_high_water=config.write_high_water,
        )
        self.pages = ErrorPages()
        self.metrics = RequestCounter()  # saved by a MetricsFlusher the entry point runs
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
        self._flowing: dict[object, tuple[int, float]] = {}  # response/tunnel -> (bytes, since)

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
        if self.tls is not None:
            await self._listen_tls(self.tls)
        self.spawn(self._expire_forever())
        logger.info("router listening on %s:%d", self.config.bind, self.port)

    async def _listen_tls(self, tls: SniCertificates) -> None:
        sock = listening_socket(
            self.config.bind,
            self.config.tls_port,
            reuse_port=self.config.reuse_port,
            backlog=self.config.backlog,
        )
        self.tls_port = sock.getsockname()[1]
        self.tls_forwarded_tail = forwarded_tail(self.tls_port, b"https")
        self._tls_server = await self.loop.create_server(
            lambda: ClientConnection(self, tls=True),
            sock=sock,
            backlog=self.config.backlog,
            ssl=tls.context,
        )
        logger.info("router listening for HTTPS on %s:%d", self.config.bind, self.tls_port)

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
            if self.tls is not None:  # certificates may take a while: routes do not wait
                built = await self._loop.run_in_executor(None, self.tls.prepare, table)
                self.tls.install(table, built)

    async def refresh_now(self) -> None:
        """A fresh table for a request every dyno of the current one failed: the read in
        flight if there is one (it serves every request asking meanwhile), else a new one.
        A failed read keeps the table."""
        assert self._refreshing is not None
        if self._refreshing.locked():
            async with self._refreshing:
                return  # the reader installs its table before a waiter runs
        try:
            await self.refresh()
        except Exception:
            logger.exception("route table refresh failed")

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
        """Close idle client connections and stale pooled dyno connections; end responses
        and tunnels no byte went through for the idle timeout (H15)."""
        now = _monotonic()
        timeout = self.config.client_idle_timeout
        flowing, self._flowing = self._flowing, {}
        for client in list(self.clients):
            if client.idle_expired(now, timeout):
                client.transport.close()
            else:
                self._check_flow(client, flowing, now)
        self.pool.sweep()

    def _check_flow(
        self, client: ClientConnection, flowing: dict[object, tuple[int, float]], now: float
    ) -> None:
        tunnel = client.tunnel
        exchange = client.active
        if tunnel is not None:
            if self._idle(tunnel, tunnel.moved, flowing, now):
                self._end_tunnel(client, tunnel)
        elif exchange is not None and exchange.head_sent and not exchange.finished:
            conn = exchange.upstream
            moved = exchange.bytes_out + (conn.moved if conn is not None else 0)
            if self._idle(exchange, moved, flowing, now):
                exchange.idle_timed_out()
        elif (
            exchange is not None
            and exchange.upstream is not None
            and not exchange.request_done
            and not client.paused  # the router is not reading: the client is not to blame
            # The body stopped coming (H28): the dyno's connection is not held for ever.
            and self._idle(exchange, exchange.upstream.moved, flowing, now)
        ):
            exchange.client_idle()

    def _idle(
        self, key: object, moved: int, flowing: dict[object, tuple[int, float]], now: float
    ) -> bool:
        # Byte counts compared from sweep to sweep: per chunk, nothing but an addition.
        seen = flowing.get(key)
        if seen is None or seen[0] != moved:
            seen = (moved, now)
        elif now - seen[1] >= self.config.idle_timeout:
            return True
        self._flowing[key] = seen
        return False

    def _end_tunnel(self, client: ClientConnection, tunnel: UpstreamConnection) -> None:
        tunnel.close()
        client.transport.close()
        upgraded = tunnel.upgraded
        if upgraded is not None:
            upgraded.status = H15.status
            self.log(upgraded, H15, count=False)  # counted once already, as a 101

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

    def log(self, exchange: Exchange, error: RouterError | None, count: bool = True) -> None:
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
            exchange.client.protocol,
        )
        wall = time.time()
        elapsed = now - exchange.t_sent if exchange.t_sent else wall - exchange.started_at
        if count:
            self.metrics.count(route.app_id, exchange.status, elapsed * 1000, wall)
        try:
            # Stamped when the request ends, as Heroku does: the stream stays in time order.
            self.sink.send(router_line(route.app_id, message, wall))
        except Exception:
            logger.exception("router log line dropped")

    # shutdown

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish for up to `grace` seconds, then end
        the rest (H99) and close every connection."""
        self.closing = True
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
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
        for server in (self._server, self._tls_server):
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 1.0)
