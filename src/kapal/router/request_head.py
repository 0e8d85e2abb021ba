"""The request head as it goes to a dyno: read from httptools callbacks, rewritten by Heroku's
rules.

Hop-by-hop headers are dropped, the client's forwarding headers are replaced by the router's own
(X-Forwarded-For is appended to), and the router adds X-Request-Id, X-Request-Start and Via.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Final

from kapal.router.codes import BAD_REQUEST, HEADER_TOO_LARGE, LINE_TOO_LONG, RouterError

# Headers the router reads, replaces or drops rather than copying through.
_SPECIAL: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"expect",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-request-id",
        b"x-request-start",
    }
)
# Tokens of a Connection header that are options, not names of headers to drop.
_CONNECTION_OPTIONS: Final = frozenset({b"", b"close", b"keep-alive", b"upgrade"})
# Headers a Connection header must not make the router drop: framing and routing depend on them.
_PROTECTED: Final = frozenset({b"host", b"content-length"})
_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9+/=-]{20,200}")

VIA: Final = b"Via: 1.1 kapal\r\n"
_HTTP11: Final = b" HTTP/1.1\r\n"
# A 1.0 request goes to the dyno as 1.0 so the answer never comes chunked, which a 1.0 client
# could not read; asking for keep-alive lets the router still pool the connection.
_HTTP10: Final = b" HTTP/1.0\r\nConnection: keep-alive\r\n"


class HeadRejected(Exception):
    """The request head breaks a limit or a rule; the router answers with `error`."""

    def __init__(self, error: RouterError) -> None:
        super().__init__(error.cause)
        self.error = error


class _RequestIds:
    """Random (version 4) UUIDs, cut from one getrandom() call per 64 ids: the router makes one
    per request, and str(uuid.uuid4()) costs a system call and a UUID object each time."""

    __slots__ = ("_hex", "_pos")
    _VARIANT: Final = {c: b"89ab"[int(chr(c), 16) & 3 :][:1] for c in b"0123456789abcdef"}

    def __init__(self) -> None:
        self._hex = b""
        self._pos = 0

    def next(self) -> bytes:
        h, pos = self._hex, self._pos
        if pos >= len(h):
            h = self._hex = os.urandom(1024).hex().encode()
            pos = 0
        self._pos = pos + 32
        return b"".join(
            (
                h[pos : pos + 8],
                b"-",
                h[pos + 8 : pos + 12],
                b"-4",
                h[pos + 13 : pos + 16],
                b"-",
                self._VARIANT[h[pos + 16]],
                h[pos + 17 : pos + 20],
                b"-",
                h[pos + 20 : pos + 32],
            )
        )


new_request_id = _RequestIds().next


def choose_request_id(sent: bytes) -> bytes:
    """Keep a client's id of 20-200 characters of [A-Za-z0-9+/=-]; otherwise make a new one."""
    if sent and _REQUEST_ID.fullmatch(sent):
        return sent
    return new_request_id()


def forwarded_for(sent: bytes, client_ip: bytes) -> bytes:
    return sent + b", " + client_ip if sent else client_ip


def forwarded_tail(port: int, proto: bytes = b"http") -> bytes:
    """Fixed headers between X-Forwarded-For's value and X-Request-Id's value."""
    return b"\r\nX-Forwarded-Proto: %s\r\nX-Forwarded-Port: %d\r\nX-Request-Id: " % (
        proto,
        port,
    )


def drop_listed(lines: Sequence[bytes], connection: bytes) -> Sequence[bytes]:
    """Drop the header lines a Connection header names as hop-by-hop; `lines` holds each
    line as four pieces (name, ": ", value, CRLF), as RequestHead collects them."""
    names = {token.strip().lower() for token in connection.split(b",")}
    names -= _CONNECTION_OPTIONS
    names -= _PROTECTED
    if not names:
        return lines
    kept: list[bytes] = []
    for i in range(0, len(lines), 4):
        if lines[i].lower() not in names:
            kept += lines[i : i + 4]
    return kept


class RequestHead:
    """Collects one request's target and headers; its methods are httptools parser callbacks."""

    __slots__ = (
        "connection",
        "content_length",
        "count",
        "expect",
        "host",
        "lines",
        "max_headers",
        "max_line",
        "request_id",
        "transfer_encoding",
        "upgrade",
        "url",
        "xff",
    )

    def __init__(self, max_line: int = 8192, max_headers: int = 1000) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self.reset()

    def reset(self) -> None:
        self.url = b""
        # The header lines to pass on, four pieces each (name, ": ", value, CRLF): joined
        # once with the rest of the head rather than concatenated line by line.
        self.lines: list[bytes] = []
        self.host = b""
        self.xff = b""
        self.request_id = b""
        self.expect = b""
        self.upgrade = b""
        self.connection = b""
        self.content_length = b""
        self.transfer_encoding = b""
        self.count = 0

    def on_url(self, url: bytes) -> None:
        if self.url:
            url = self.url + url
        if len(url) > self.max_line:
            raise HeadRejected(LINE_TOO_LONG)
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.count += 1
        if self.count > self.max_headers or len(name) + len(value) + 2 > self.max_line:
            raise HeadRejected(HEADER_TOO_LARGE)
        key = name.lower()
        if key not in _SPECIAL:
            self.lines += (name, b": ", value, b"\r\n")
        elif key == b"host":
            if self.host:  # which one would the app believe? Refuse to guess.
                raise HeadRejected(BAD_REQUEST)
            self.host = value
            self.lines += (name, b": ", value, b"\r\n")
        elif key == b"content-length":
            self.content_length = value
            self.lines += (name, b": ", value, b"\r\n")
        elif key == b"x-forwarded-for":
            self.xff = self.xff + b", " + value if self.xff else value
        elif key == b"x-request-id":
            self.request_id = value
        elif key == b"transfer-encoding":
            # llhttp has already rejected anything but a coding list ending in chunked.
            self.transfer_encoding = value
        elif key == b"connection":
            self.connection = self.connection + b"," + value if self.connection else value
        elif key == b"upgrade":
            self.upgrade = value
        elif key == b"expect":
            self.expect = value
        # Everything else in _SPECIAL is hop-by-hop or the router's to set: dropped.

    @property
    def has_body(self) -> bool:
        return bool(self.transfer_encoding) or self.content_length.strip() not in (b"", b"0")

    def forward(
        self,
        method: bytes,
        *,
        http10: bool,
        upgrade: bool,
        xff: bytes,
        request_id: bytes,
        start_ms: int,
        tail: bytes,
    ) -> bytes:
        """The head to send to the dyno."""
        if upgrade:
            version = b" HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: " + self.upgrade + b"\r\n"
        else:
            version = _HTTP10 if http10 else _HTTP11
        lines: Sequence[bytes] = self.lines
        if self.connection:
            lines = drop_listed(lines, self.connection)
        te = b""
        if self.transfer_encoding:
            te = b"Transfer-Encoding: " + self.transfer_encoding + b"\r\n"
        return b"".join(
            (
                method,
                b" ",
                self.url,
                version,
                *lines,
                te,
                b"X-Forwarded-For: ",
                xff,
                tail,
                request_id,
                b"\r\nX-Request-Start: %d\r\n" % start_ms,
                VIA,
                b"\r\n",
            )
        )
