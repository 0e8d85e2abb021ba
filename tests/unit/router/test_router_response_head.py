from kapal.router.response_head import (
    CLOSE,
    KEEP_ALIVE,
    body_is_framed,
    rewrite_response_head,
    rewrite_upgrade_head,
)


def test_status_line_is_answered_as_http11_and_via_is_added() -> None:
    head = b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\nX-App: a\r\n\r\n"
    assert rewrite_response_head(head, b"") == (
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nX-App: a\r\nVia: 1.1 kapal\r\n\r\n"
    )


def test_hop_by_hop_headers_are_replaced_by_the_routers_connection() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
        b"Content-Length: 0\r\nUpgrade: h2c\r\nProxy-Connection: x\r\nDate: now\r\n\r\n"
    )
    assert rewrite_response_head(head, CLOSE) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: now\r\n"
        b"Connection: close\r\nVia: 1.1 kapal\r\n\r\n"
    )
    assert b"Connection: keep-alive\r\n" in rewrite_response_head(head, KEEP_ALIVE)


def test_headers_named_by_connection_are_dropped_but_never_framing() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nConnection: close, X-Hop, Content-Length\r\nX-Hop: 1\r\n"
        b"X-Hopper: 2\r\nContent-Length: 0\r\n\r\n"
    )
    out = rewrite_response_head(head, b"")
    assert b"X-Hop: 1" not in out
    assert b"X-Hopper: 2" in out
    assert b"Content-Length: 0" in out


def test_a_folded_hop_by_hop_header_goes_with_its_continuation() -> None:
    head = b"HTTP/1.1 200 OK\r\nKeep-Alive: a\r\n  b\r\nX-A: 1\r\n\r\n"
    assert (
        rewrite_response_head(head, b"") == b"HTTP/1.1 200 OK\r\nX-A: 1\r\nVia: 1.1 kapal\r\n\r\n"
    )


def test_a_head_without_headers() -> None:
    assert rewrite_response_head(b"HTTP/1.1 204 No Content\r\n\r\n", b"") == (
        b"HTTP/1.1 204 No Content\r\nVia: 1.1 kapal\r\n\r\n"
    )


def test_chunked_transfer_encoding_is_kept_because_the_body_passes_through_raw() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert b"Transfer-Encoding: chunked\r\n" in rewrite_response_head(head, b"")


def test_upgrade_head_keeps_connection_and_upgrade() -> None:
    head = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    assert rewrite_upgrade_head(head) == (
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Via: 1.1 kapal\r\n\r\n"
    )


def test_body_framing() -> None:
    assert body_is_framed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert body_is_framed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n")
    assert not body_is_framed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert not body_is_framed(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    assert not body_is_framed(b"HTTP/1.0 200 OK\r\nX-Content-Length: 5\r\n\r\n")
