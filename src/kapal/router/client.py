"""A client connection: parses requests with httptools, runs them one at a time (pipelined ones
wait their turn), and after a 101 becomes one end of a byte tunnel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, ClassVar

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from kapal.router.codes import (
    BAD_CHUNK,
    BAD_EXPECT,
    BAD_METHOD,
    BAD_REQUEST,
    H99,
    HEADER_TOO_LARGE,
    RouterError,
)
from kapal.router.exchange import Exchange
from kapal.router.request_head import (
    HeadRejected,
    RequestHead,
    choose_request_id,
    forwarded_for,
)

if TYPE_CHECKING:
    from kapal.router.server import Router
    from kapal.router.upstream import UpstreamConnection

logger = logging.getLogger(__name__)
_monotonic = time.monotonic
_time = time.time


class ClientConnection(RequestHead, asyncio.Protocol):
    # Reasons to stop reading from the client; reading resumes when none is left.
    PAUSE_PIPELINE: ClassVar[int] = 1  # a pipelined request waits for the one before it
    PAUSE_UPSTREAM: ClassVar[int] = 2  # the dyno's side is not taking the body fast enough
    PAUSE_PENDING: ClassVar[int] = 4  # the body waits for a dyno connection
    PAUSE_REJECTED: ClassVar[int] = 8  # a bad request waits for those before it to be answered

    __slots__ = (
        "_draining",
        "active",
        "closed",
        "current",
        "forwarded_tail",
        "head_bytes",
        "idle_since",
        "in_head",
        "ip",
        "parser",
        "paused",
        "protocol",
        "queue",
        "raw",
        "rejected",
        "router",
        "transport",
        "tunnel",
        "write_paused",
    )

    def __init__(self, router: Router, tls: bool = False) -> None:
        config = router.config
        RequestHead.__init__(self, config.max_line, config.max_headers)
        self.router = router
        # X-Forwarded-Proto and -Port of the socket this connection came in on.
        self.forwarded_tail = router.tls_forwarded_tail if tls else router.forwarded_tail
        self.protocol = "https" if tls else "http"
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self.parser = HttpRequestParser(self)
        self.ip = b""
        self.current: Exchange | None = None  # the request whose body is being read
        self.active: Exchange | None = None  # the request being answered
        self.queue: deque[Exchange] = deque()
        self.tunnel: UpstreamConnection | None = None
        self.raw = False
        # A malformed request, and its error, answered once the requests before it are.
        self.rejected: tuple[Exchange, RouterError] | None = None
        self.closed = False
        self.paused = 0
        self.write_paused = False
        self.in_head = False
        self.head_bytes = 0
        self.idle_since = 0.0
        self._draining = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]).encode() if peer else b""
        self.transport.set_write_buffer_limits(high=self.router.config.write_high_water)
        self.idle_since = _monotonic()
        self.router.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.router.client_gone(self)
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None
        active, self.active = self.active, None
        if active is not None:
            active.client_lost()
        for waiting in self.queue:
            waiting.client_lost()
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.raw:
            self._raw_data(data)
            return
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as exc:
            # The rest belongs to the protocol the client asked to switch to.
            self.raw = True
            rest = data[int(exc.args[0]) :]
            if rest:
                self._raw_data(rest)
        except HttpParserError as exc:
            context = exc.__context__
            if isinstance(context, HeadRejected):
                self._reject(context.error)
            elif context is not None:  # raised by the router's own code in a callback: a bug
                logger.error("request handling failed", exc_info=context)
                self._reject(H99)
            else:
                self._reject(BAD_REQUEST if self.in_head or self.current is None else BAD_CHUNK)
        else:
            if self.in_head:
                self.head_bytes += len(data)
                if self.head_bytes > self.router.config.max_request_head:
                    self._reject(HEADER_TOO_LARGE)

    def _raw_data(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.moved += len(data)
            tunnel.transport.write(data)
        elif self.active is not None:
            self.active.request_raw(data)

    def pause_writing(self) -> None:
        self.write_paused = True
        conn = self.tunnel or (self.active.upstream if self.active is not None else None)
        if conn is not None:
            conn.pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        conn = self.tunnel or (self.active.upstream if self.active is not None else None)
        if conn is not None:
            conn.resume()

    # httptools callbacks (on_url and on_header come from RequestHead)

    def on_message_begin(self) -> None:
        self.reset()
        self.in_head = True
        self.head_bytes = 0

    def on_headers_complete(self) -> None:
        if self.transport.is_closing():
            return  # a request pipelined after one that closes the connection
        parser = self.parser
        method = parser.get_method()
        if method == b"CONNECT":
            raise HeadRejected(BAD_METHOD)
        http10 = parser.get_http_version() == "1.0"
        expect_continue = False
        if self.expect:
            if self.expect.strip().lower() != b"100-continue":
                raise HeadRejected(BAD_EXPECT)
            expect_continue = not http10
        upgrade = parser.should_upgrade()
        self.in_head = False
        start = _time()
        request_id = choose_request_id(self.request_id)
        xff = forwarded_for(self.xff, self.ip)
        head = self.forward(
            method,
            http10=http10,
            upgrade=upgrade,
            xff=xff,
            request_id=request_id,
            start_ms=int(start * 1000),
            tail=self.forwarded_tail,
        )
        exchange = Exchange(
            self,
            method,
            self.url,
            self.host,
            head,
            request_id,
            xff,
            start,
            parser.should_keep_alive(),
            http10,
            upgrade,
            expect_continue,
            bool(self.transfer_encoding),
            self.has_body,
        )
        self.current = exchange
        if self.active is None:
            self.active = exchange
            exchange.start()
        else:
            self.queue.append(exchange)
            self.pause(self.PAUSE_PIPELINE)

    def on_body(self, body: bytes) -> None:
        exchange = self.current
        if exchange is not None:
            exchange.request_body(body)

    def on_message_complete(self) -> None:
        exchange, self.current = self.current, None
        if exchange is not None:
            exchange.request_complete()

    # driven by exchanges

    def exchange_done(self, exchange: Exchange) -> None:
        if self.active is exchange:
            self.active = None
        self.resume(self.PAUSE_UPSTREAM | self.PAUSE_PENDING)
        self.idle_since = _monotonic()
        if self.tunnel is not None:
            return
        if exchange.close_client or self.router.closing:
            self.transport.close()
            return
        if self._draining:
            return  # the loop below picks the next request
        self._draining = True
        try:
            while self.active is None and self.queue and not self.transport.is_closing():
                following = self.queue.popleft()
                self.active = following
                if not self.queue:
                    self.resume(self.PAUSE_PIPELINE)
                following.start()
        finally:
            self._draining = False
        if self.rejected is not None and self.active is None and not self.queue:
            bad, error = self.rejected
            self.rejected = None
            self.raw = True  # read nothing more as HTTP
            self.active = bad
            bad.fail(error)

    def start_tunnel(self, conn: UpstreamConnection) -> None:
        self.tunnel = conn
        conn.tunnel = self
        conn.exchange = None
        self.raw = True
        if self.write_paused:
            conn.pause()

    def pause(self, reason: int) -> None:
        if not self.paused and not self.closed:
            self.transport.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and not self.closed:
                self.transport.resume_reading()

    def _reject(self, error: RouterError) -> None:
        """Answer a malformed request, then close: the rest of the stream cannot be trusted.
        Requests before it on the connection are answered first."""
        if self.transport.is_closing() or self.rejected is not None:
            return
        current = self.current
        self.current = None
        if current is not None and current is self.active:
            self.raw = True  # read nothing more as HTTP
            current.fail(error)
        else:
            if current is None:
                # The head itself is bad: a stand-in exchange answers it (and logs it if the
                # Host header named an app).
                bad = self._stand_in()
            else:  # the body of a pipelined request is bad: it is the last one queued
                self.queue.remove(current)
                bad = current
                bad.route = self.router.index.lookup(bad.host) if bad.host else None
            if self.active is not None:
                self.rejected = (bad, error)
                self.pause(self.PAUSE_REJECTED)
                return
            self.raw = True
            self.active = bad
            bad.fail(error)
        if not self.transport.is_closing():
            self.transport.close()

    def _stand_in(self) -> Exchange:
        exchange = Exchange(
            self,
            self.parser.get_method(),
            self.url,
            self.host,
            b"",
            choose_request_id(self.request_id),
            forwarded_for(self.xff, self.ip),
            _time(),
            False,
            False,
            False,
            False,
            False,
            False,
        )
        exchange.route = self.router.index.lookup(self.host) if self.host else None
        return exchange

    def idle_expired(self, now: float, timeout: float) -> bool:
        return (
            self.active is None
            and self.tunnel is None
            and not self.queue
            and now - self.idle_since > timeout
        )
