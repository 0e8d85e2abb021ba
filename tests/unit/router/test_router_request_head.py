import uuid

import pytest
from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser
from hypothesis import given
from hypothesis import strategies as st

from kapal.router.codes import BAD_REQUEST, HEADER_TOO_LARGE, LINE_TOO_LONG
from kapal.router.request_head import (
    HeadRejected,
    RequestHead,
    choose_request_id,
    drop_listed,
    forwarded_for,
    forwarded_tail,
    new_request_id,
)

TAIL = forwarded_tail(8080)


class Reader(RequestHead):
    """RequestHead driven by a real httptools parser, as the client connection drives it."""

    __slots__ = ("complete", "parser")

    def __init__(self, max_line: int = 8192, max_headers: int = 1000) -> None:
        super().__init__(max_line, max_headers)
        self.parser = HttpRequestParser(self)
        self.complete = False

    def on_message_begin(self) -> None:
        self.reset()

    def on_headers_complete(self) -> None:
        self.complete = True


def read(raw: bytes, **limits: int) -> Reader:
    reader = Reader(**limits)
    try:
        reader.parser.feed_data(raw)
    except HttpParserUpgrade as upgrade:
        assert int(upgrade.args[0]) == len(raw)  # nothing after the head
        assert reader.parser.should_upgrade()
    assert reader.complete
    return reader


def forward(reader: Reader, *, http10: bool = False, upgrade: bool = False) -> bytes:
    return reader.forward(
        reader.parser.get_method(),
        http10=http10,
        upgrade=upgrade,
        xff=forwarded_for(reader.xff, b"10.0.0.9"),
        request_id=b"req-id-0123456789abcdef",
        start_ms=1700000000123,
        tail=TAIL,
    )


def header_lines(head: bytes) -> list[bytes]:
    return head.split(b"\r\n")[1:-2]


def test_forwarded_head_keeps_end_to_end_headers_and_adds_the_routers() -> None:
    reader = read(
        b"GET /a/b?c=1 HTTP/1.1\r\nHost: demo.localhost:8080\r\nAccept: */*\r\nCookie: x=1\r\n\r\n"
    )
    head = forward(reader)
    assert head.startswith(b"GET /a/b?c=1 HTTP/1.1\r\n")
    assert head.endswith(b"\r\n\r\n")
    assert header_lines(head) == [
        b"Host: demo.localhost:8080",
        b"Accept: */*",
        b"Cookie: x=1",
        b"X-Forwarded-For: 10.0.0.9",
        b"X-Forwarded-Proto: http",
        b"X-Forwarded-Port: 8080",
        b"X-Request-Id: req-id-0123456789abcdef",
        b"X-Request-Start: 1700000000123",
        b"Via: 1.1 kapal",
    ]
    assert reader.host == b"demo.localhost:8080"
    assert not reader.has_body


def test_hop_by_hop_and_spoofed_router_headers_are_dropped() -> None:
    reader = read(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n"
        b"TE: trailers\r\nProxy-Connection: x\r\nProxy-Authorization: Basic Zm9v\r\n"
        b"X-Secret: 1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"
        b"X-Request-Start: 1\r\nX-Kept: yes\r\n\r\n"
    )
    lines = header_lines(forward(reader))
    names = [line.split(b":")[0].lower() for line in lines]
    for dropped in (
        b"connection",
        b"keep-alive",
        b"te",
        b"proxy-connection",
        b"proxy-authorization",
        b"x-secret",
    ):
        assert dropped not in names
    assert b"X-Kept: yes" in lines
    assert b"X-Forwarded-Proto: http" in lines
    assert b"X-Forwarded-Port: 8080" in lines
    assert names.count(b"x-forwarded-proto") == names.count(b"x-request-start") == 1


def test_x_forwarded_for_is_appended_to() -> None:
    reader = read(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\n"
        b"X-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n\r\n"
    )
    assert b"X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9" in header_lines(forward(reader))


def test_chunked_request_keeps_transfer_encoding_and_http10_asks_for_keep_alive() -> None:
    chunked = read(b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert chunked.has_body
    assert b"Transfer-Encoding: chunked" in header_lines(forward(chunked))
    old = read(b"GET / HTTP/1.0\r\nHost: h\r\n\r\n")
    head = forward(old, http10=True)
    assert head.startswith(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n")


def test_content_length_body_is_noticed() -> None:
    assert read(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n").has_body
    assert not read(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").has_body


def test_upgrade_requests_keep_their_upgrade_headers() -> None:
    reader = read(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: abc\r\n\r\n"
    )
    head = forward(reader, upgrade=True)
    assert head.startswith(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n")
    assert b"Sec-WebSocket-Key: abc" in header_lines(head)


def test_connection_cannot_drop_host_or_content_length() -> None:
    # Four pieces a line, as RequestHead collects them.
    lines = [b"Host", b": ", b"h", b"\r\n", b"Content-Length", b": ", b"2", b"\r\n"]
    lines += [b"X-A", b": ", b"1", b"\r\n"]
    assert drop_listed(lines, b"close, host, Content-Length, x-a") == lines[:8]
    assert drop_listed(lines, b"keep-alive") is lines


def test_a_request_line_over_the_limit_is_rejected() -> None:
    reader = Reader(max_line=100)
    with pytest.raises(HttpParserError) as raised:
        reader.parser.feed_data(b"GET /" + b"a" * 200 + b" HTTP/1.1\r\n\r\n")
    assert isinstance(raised.value.__context__, HeadRejected)
    assert raised.value.__context__.error is LINE_TOO_LONG


def test_a_header_line_over_the_limit_is_rejected() -> None:
    reader = Reader(max_line=100)
    with pytest.raises(HttpParserError) as raised:
        reader.parser.feed_data(b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 100 + b"\r\n\r\n")
    assert isinstance(raised.value.__context__, HeadRejected)
    assert raised.value.__context__.error is HEADER_TOO_LARGE


def test_too_many_headers_are_rejected() -> None:
    reader = Reader(max_headers=10)
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(11))
    with pytest.raises(HttpParserError) as raised:
        reader.parser.feed_data(b"GET / HTTP/1.1\r\n" + headers + b"\r\n")
    assert isinstance(raised.value.__context__, HeadRejected)
    assert raised.value.__context__.error is HEADER_TOO_LARGE
    # Exactly at the limit is fine.
    read(
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(10)) + b"\r\n",
        max_headers=10,
    )


def test_a_header_split_across_reads_arrives_whole() -> None:
    reader = Reader()
    for piece in (
        b"GET / HTTP/1.1\r\nHo",
        b"st: demo.loc",
        b"alhost\r\nX-Request-",
        b"Id: ab\r\n\r\n",
    ):
        reader.parser.feed_data(piece)
    assert reader.complete
    assert reader.host == b"demo.localhost"
    assert reader.request_id == b"ab"


ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-"


@given(st.text(alphabet=ID_CHARS, min_size=20, max_size=200))
def test_a_well_formed_client_request_id_is_kept(sent: str) -> None:
    assert choose_request_id(sent.encode()) == sent.encode()


@given(
    st.one_of(
        st.text(alphabet=ID_CHARS, max_size=19),
        st.text(alphabet=ID_CHARS, min_size=201, max_size=300),
        st.text(alphabet=ID_CHARS, min_size=10, max_size=100).map(lambda s: s + " _;" + s),
    )
)
def test_a_malformed_client_request_id_is_replaced_by_a_uuid4(sent: str) -> None:
    chosen = choose_request_id(sent.encode())
    assert chosen != sent.encode()
    assert uuid.UUID(chosen.decode()).version == 4


def test_new_request_ids_differ() -> None:
    assert choose_request_id(b"") != choose_request_id(b"")


def test_two_host_headers_are_rejected() -> None:
    reader = Reader()
    with pytest.raises(HttpParserError) as raised:
        reader.parser.feed_data(b"GET / HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\n\r\n")
    assert isinstance(raised.value.__context__, HeadRejected)
    assert raised.value.__context__.error is BAD_REQUEST


def test_new_request_ids_are_uuid4s_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(1000)]  # spans several refills of the random pool
    assert len(set(ids)) == 1000
    for value in ids[:100]:
        parsed = uuid.UUID(value.decode())
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed).encode() == value
