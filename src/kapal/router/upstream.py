"""A connection to a dyno: the response side of the proxy.

A response is parsed by httptools only to find where its head and its message end; the head is
rewritten and everything after it is passed to the client as the bytes that arrived.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

if TYPE_CHECKING:
    from kapal.router.client import ClientConnection
    from kapal.router.exchange import Exchange


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_buf",
        "_done",
        "_final",
        "_heads",
        "closed",
        "exchange",
        "garbage",
        "head_keep_alive",
        "head_only",
        "idle_since",
        "keep_alive",
        "max_head",
        "moved",
        "parser",
        "paused",
        "port",
        "reused",
        "transport",
        "tunnel",
        "upgraded",
    )

    def __init__(self, port: int, max_head: int) -> None:
        self.port = port
        self.max_head = max_head
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set on connect
        self.parser = HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.tunnel: ClientConnection | None = None
        self.closed = False
        self.paused = False
        self.reused = False
        self.idle_since = 0.0
        self.moved = 0  # request body and tunnel bytes, both ways: the sweep's H15 check
        self.upgraded: Exchange | None = None  # the request that made this a tunnel
        self.begin(None)

    def begin(self, exchange: Exchange | None, head_only: bool = False) -> None:
        """Expect one response, for `exchange` (a HEAD request's response has no body)."""
        self.exchange = exchange
        self.head_only = head_only
        self._buf = b""
        self._heads: list[int] = []
        self._final = False
        self._done = False
        self.garbage = False
        self.keep_alive = False
        self.head_keep_alive = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.tunnel is not None:
            self.tunnel.transport.close()
        elif self.exchange is not None:
            self.exchange.upstream_lost(self)

    def pause_writing(self) -> None:
        client = self.tunnel or (self.exchange.client if self.exchange else None)
        if client is not None:
            client.pause(client.PAUSE_UPSTREAM)

    def resume_writing(self) -> None:
        client = self.tunnel or (self.exchange.client if self.exchange else None)
        if client is not None:
            client.resume(client.PAUSE_UPSTREAM)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            if self.tunnel is not None:
                self.moved += len(data)
                self.tunnel.transport.write(data)
            else:  # an idle connection must stay silent; it can no longer be trusted
                self.close()
            return
        if not exchange.head_sent:
            self._head_data(data, exchange)
            return
        try:
            self.parser.feed_data(data)
        except HttpParserError:
            exchange.response_broken(self)
            return
        exchange.response_body(data)
        if self._done:
            exchange.response_complete(self)

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._done:  # bytes after the end of the response
            self.garbage = True

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if not 100 <= status <= 599:  # RFC 9110: no valid status is outside (H17)
            raise ValueError(f"response status {status}")  # httptools: HttpParserCallbackError
        self._heads.append(status)
        if status >= 200 or status == 101:
            self._final = True
            self.head_keep_alive = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        if self._final and not self._done:
            self._done = True
            self.keep_alive = self.parser.should_keep_alive()

    # the response head

    def _head_data(self, data: bytes, exchange: Exchange) -> None:
        buf = self._buf + data if self._buf else data
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as exc:
            end = len(buf) - len(data) + int(exc.args[0])
            self._heads.clear()
            exchange.response_upgraded(self, buf[:end], buf[end:])
            return
        except HttpParserError:
            exchange.response_broken(self)
            return
        heads = self._heads
        if not heads:
            if len(buf) > self.max_head:
                exchange.response_too_large(self)
            else:
                self._buf = buf
            return
        pos = 0
        for status in heads:
            end = buf.find(b"\r\n\r\n", pos) + 4
            if status >= 200:
                heads.clear()
                self._buf = b""
                body = buf[end:]
                if self.head_only:
                    # httptools cannot be told that a HEAD response has no body: start afresh.
                    self._done = True
                    self.keep_alive = self.head_keep_alive
                    self.garbage = bool(body)
                    self.parser = HttpResponseParser(self)
                    body = b""
                exchange.response_head(self, buf[pos:end], body, status)
                if self._done and self.exchange is exchange:
                    exchange.response_complete(self)
                return
            exchange.response_interim(buf[pos:end])
            pos = end
        heads.clear()
        self._buf = buf[pos:]

    # flow control and life

    def pause(self) -> None:
        if not self.paused and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            if not self.closed:
                self.transport.resume_reading()

    def detach(self) -> None:
        """Forget the exchange and close: the response is no longer wanted."""
        self.exchange = None
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
