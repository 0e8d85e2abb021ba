"""One request's way through the router: route it, wait for a booting dyno, connect (trying
other dynos when refused), stream both bodies, turn every failure into its H code, log it."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from kapal.router.codes import (
    H12,
    H13,
    H15,
    H17,
    H18,
    H19,
    H20,
    H21,
    H25,
    H27,
    H28,
    H99,
    NO_SUCH_APP,
    WAIT,
    WAKE,
    RouterError,
    decide,
)
from kapal.router.response_head import (
    CLOSE,
    KEEP_ALIVE,
    body_is_framed,
    rewrite_response_head,
    rewrite_upgrade_head,
)
from kapal.router.routes import AppRoute

if TYPE_CHECKING:
    from kapal.router.client import ClientConnection
    from kapal.router.upstream import UpstreamConnection

_monotonic = time.monotonic
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_PENDING_LIMIT = 64 * 1024  # body bytes held while no dyno connection is ready yet
_NO_BODY_STATUS = frozenset({204, 304})


class Exchange:
    __slots__ = (
        "bytes_out",
        "chunked",
        "client",
        "close_client",
        "close_delimited",
        "connect_ms",
        "dyno",
        "expect_continue",
        "finished",
        "fwd",
        "has_body",
        "head",
        "head_sent",
        "host",
        "http10",
        "keep_alive",
        "last_error",
        "method",
        "parked",
        "pending",
        "pending_bytes",
        "port",
        "reloaded",
        "request_done",
        "request_id",
        "retried",
        "route",
        "router",
        "started_at",
        "status",
        "t_route",
        "t_sent",
        "timer",
        "tried",
        "upgrade",
        "upstream",
        "url",
    )

    def __init__(
        self,
        client: ClientConnection,
        method: bytes,
        url: bytes,
        host: bytes,
        head: bytes,
        request_id: bytes,
        fwd: bytes,
        started_at: float,
        keep_alive: bool,
        http10: bool,
        upgrade: bool,
        expect_continue: bool,
        chunked: bool,
        has_body: bool,
    ) -> None:
        self.client = client
        self.router = client.router
        self.method = method
        self.url = url
        self.host = host
        self.head = head
        self.request_id = request_id
        self.fwd = fwd
        self.started_at = started_at  # unix seconds
        self.keep_alive = keep_alive
        self.http10 = http10
        self.upgrade = upgrade
        self.expect_continue = expect_continue
        self.chunked = chunked
        self.has_body = has_body
        self.route: AppRoute | None = None
        self.dyno = ""
        self.port = 0
        self.tried: set[int] | None = None
        self.last_error = H21
        self.upstream: UpstreamConnection | None = None
        self.pending: list[bytes] | None = None
        self.pending_bytes = 0
        self.request_done = False
        self.head_sent = False
        self.close_client = False
        self.close_delimited = False
        self.finished = False
        self.parked = False
        self.retried = False
        self.reloaded = False
        self.timer: asyncio.TimerHandle | None = None
        self.t_route = 0.0
        self.t_sent = 0.0
        self.connect_ms: int | None = None
        self.status = 0
        self.bytes_out = 0

    # routing

    def start(self) -> None:
        route = self.router.index.lookup(self.host)
        if route is None:
            self.fail(NO_SUCH_APP)
            return
        self.route = route
        self.router.activity.touch(route.app_id, self.started_at)
        self._dispatch(route)

    def _dispatch(self, route: AppRoute) -> None:
        verdict = decide(route)
        if isinstance(verdict, RouterError):
            self.fail(verdict)
        elif verdict is WAIT or verdict is WAKE:
            if verdict is WAKE:
                self.router.activity.wake(route.app_id, self.started_at)
            self.parked = True
            self.router.parked.add(self)
            self.timer = self.router.loop.call_later(
                self.router.config.boot_timeout, self._boot_timeout
            )
        else:
            self._proxy(route)

    def reroute(self) -> None:
        """The route table changed while this request waits for a dyno to boot."""
        assert self.route is not None
        route = self.router.index.by_name(self.route.name)
        if route is None:  # the app is gone
            self.route = None
            self._unpark()
            self.fail(NO_SUCH_APP)
            return
        self.route = route
        verdict = decide(route)
        if verdict is not WAIT and verdict is not WAKE:
            self._unpark()
            self._dispatch(route)

    def _boot_timeout(self) -> None:
        self.timer = None
        self._unpark()
        self.fail(H20)

    def _unpark(self) -> None:
        if self.parked:
            self.parked = False
            self.router.parked.discard(self)
            self._cancel_timer()

    # connecting

    def _proxy(self, route: AppRoute) -> None:
        tried = self.tried
        candidates = [d for d in route.up if d.port not in tried] if tried else route.up
        if not candidates or (tried and len(tried) >= self.router.config.connect_attempts):
            self.fail(self.last_error)
            return
        dyno = candidates[0] if len(candidates) == 1 else random.choice(candidates)
        self.dyno = dyno.name
        self.port = dyno.port
        if not self.t_route:
            self.t_route = _monotonic()
        conn = self.router.pool.acquire(dyno.port)
        if conn is not None:
            self._attach(conn)
        else:
            self.router.spawn(self._connect(dyno.port))

    async def _connect(self, port: int) -> None:
        error: RouterError
        try:
            conn = await self.router.pool.connect(port)
        except TimeoutError:
            error = H19
        except OSError:
            error = H21
        else:
            if self.finished:  # the client left meanwhile: keep the fresh connection
                self.router.pool.release(conn)
            else:
                self._attach(conn)
            return
        if self.finished:
            return
        if self.tried is None:
            self.tried = set()
        self.tried.add(port)
        self.last_error = error
        route = self.router.index.by_name(self.route.name) if self.route else None
        if route is not None and not self.reloaded and all(d.port in self.tried for d in route.up):
            # Every dyno the table names failed: it may be older than a replacement (the old
            # dyno stopped before the router reloaded). Once, a fresh table's dynos are tried.
            self.reloaded = True
            await self.router.refresh_now()
            if self.finished:
                return
            route = self.router.index.by_name(route.name)
        if route is None or not route.up:
            self.fail(error)
        else:
            self._proxy(route)

    def _attach(self, conn: UpstreamConnection) -> None:
        self.upstream = conn
        conn.begin(self, self.method == b"HEAD")
        now = _monotonic()
        self.connect_ms = int((now - self.t_route) * 1000)
        self.t_sent = now
        client = self.client
        if client.write_paused:
            conn.pause()
        if self.expect_continue and not self.request_done:
            self.expect_continue = False
            client.transport.write(_CONTINUE)
        pending = self.pending
        if pending:
            self.pending = None
            self.pending_bytes = 0
            conn.transport.write(self.head + b"".join(pending))
            client.resume(client.PAUSE_PENDING)
        else:
            conn.transport.write(self.head)
        if self.request_done:
            self._arm_timeout()

    # the request body, from the client

    def request_body(self, data: bytes) -> None:
        if self.chunked:
            data = b"".join((b"%x\r\n" % len(data), data, b"\r\n"))
        self.request_raw(data)

    def request_raw(self, data: bytes) -> None:
        conn = self.upstream
        if conn is not None:
            conn.moved += len(data)
            conn.transport.write(data)
        elif not self.finished:
            if self.pending is None:
                self.pending = [data]
            else:
                self.pending.append(data)
            self.pending_bytes += len(data)
            if self.pending_bytes > _PENDING_LIMIT:
                self.client.pause(self.client.PAUSE_PENDING)

    def request_complete(self) -> None:
        self.request_done = True
        if self.chunked:
            self.request_raw(b"0\r\n\r\n")
        if self.upstream is not None and not self.head_sent:
            self._arm_timeout()

    def _arm_timeout(self) -> None:
        # A deadline in a dict the router checks a few times a second: cheaper per request
        # than a timer handle, and H12 is not a precision instrument.
        router = self.router
        router.awaiting[self] = _monotonic() + router.config.request_timeout

    def request_timed_out(self) -> None:
        """No response byte came in time (called by the router)."""
        self.fail(H12)

    def client_idle(self) -> None:
        """The request body stopped coming for too long (called by the router)."""
        self.fail(H28)

    def idle_timed_out(self) -> None:
        """No byte either way for too long since the response head (called by the router)."""
        self.status = H15.status  # what Heroku logs, whatever the head said
        self._abort(H15)

    # the response, from the dyno

    def response_interim(self, head: bytes) -> None:
        """A 1xx response (103 Early Hints): passed on, the final one follows."""
        self.client.transport.write(head)

    def response_head(
        self, conn: UpstreamConnection, head: bytes, body: bytes, status: int
    ) -> None:
        self._cancel_timer()
        self.status = status
        self.head_sent = True
        close = not self.keep_alive or self.upgrade or not self.request_done or self.router.closing
        if not (
            conn.head_keep_alive
            or conn.head_only
            or status in _NO_BODY_STATUS
            or body_is_framed(head)
        ):
            self.close_delimited = close = True
        self.close_client = close
        out = rewrite_response_head(head, CLOSE if close else KEEP_ALIVE if self.http10 else b"")
        if body:
            self.bytes_out = len(body)
            self.client.transport.writelines((out, body))
        else:
            self.client.transport.write(out)

    def response_body(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.client.transport.write(data)

    def response_complete(self, conn: UpstreamConnection) -> None:
        self.upstream = None
        if conn.garbage:  # the dyno sent more than one response: trust neither side's framing
            self.close_client = True
            conn.detach()
        elif conn.keep_alive and self.request_done and not self.upgrade:
            self.router.pool.release(conn)
        else:
            conn.detach()
        self._finish(None)

    def response_upgraded(self, conn: UpstreamConnection, head: bytes, rest: bytes) -> None:
        """101 Switching Protocols: from now on both connections are a byte tunnel."""
        if not self.upgrade:
            self.response_broken(conn)
            return
        self._cancel_timer()
        self.status = 101
        self.head_sent = True
        self.upstream = None
        out = rewrite_upgrade_head(head)
        self.client.transport.write(out + rest if rest else out)
        conn.upgraded = self
        self.client.start_tunnel(conn)
        self._finish(None)

    def response_broken(self, conn: UpstreamConnection) -> None:
        self.upstream = None
        conn.detach()
        if self.head_sent:
            self._abort(H18)
        else:
            self.fail(H17)

    def response_too_large(self, conn: UpstreamConnection) -> None:
        self.upstream = None
        conn.detach()
        self.fail(H25)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        """The dyno closed the connection before the response ended."""
        if self.finished:
            return
        self.upstream = None
        if self.head_sent:
            if self.close_delimited:
                self._finish(None)
            else:
                self._abort(H18)
        elif conn.reused and not self.retried and not self.has_body:
            # A pooled connection the app closed just as it was reused: one fresh try.
            self.retried = True
            self._cancel_timer()
            self.router.spawn(self._connect(self.port))
        else:
            self.fail(H13)

    # ends

    def client_lost(self) -> None:
        """The client went away before the response was complete."""
        if self.finished:
            return
        self._unpark()
        if self.upstream is not None:
            self.upstream.detach()
            self.upstream = None
        self.status = 499
        self.close_client = True
        self._finish(H27, tell_client=False)

    def shutdown(self) -> None:
        """The router is stopping and the grace period is over."""
        if self.head_sent:
            self._abort(H99)
        else:
            self._unpark()
            self.fail(H99)

    def fail(self, error: RouterError) -> None:
        """Answer with the router's error page for `error`."""
        if self.finished:
            return
        if self.head_sent:
            self._abort(error)
            return
        if self.upstream is not None:
            self.upstream.detach()
            self.upstream = None
        # An unread request body would be taken for the next request: close instead.
        unread = self.has_body and not self.request_done
        close = unread or not self.keep_alive or self.upgrade or self.router.closing
        data, nbytes = self.router.pages.response(
            error, close=close, head=self.method == b"HEAD", route=self.route
        )
        if not self.client.transport.is_closing():
            self.client.transport.write(data)
        self.status = error.status
        self.bytes_out = nbytes
        self.close_client = close
        self._finish(error)

    def _abort(self, error: RouterError) -> None:
        """Fail after the head was sent: all the client can be told is a closed connection."""
        if self.upstream is not None:
            self.upstream.detach()
            self.upstream = None
        self.close_client = True
        self._finish(error)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.router.awaiting.pop(self, None)

    def _finish(self, error: RouterError | None, tell_client: bool = True) -> None:
        self.finished = True
        self._cancel_timer()
        if self.route is not None:
            self.router.log(self, error)
        if tell_client:
            self.client.exchange_done(self)
