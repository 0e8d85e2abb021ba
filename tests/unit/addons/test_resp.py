"""The RESP client: encoding commands, reading every kind of reply, INFO's fields."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from kapal.addons.resp import RespConnection, RespError, encode, parse_info

pytestmark = pytest.mark.timeout(30)


def test_encode_sends_every_argument_as_a_bulk_string() -> None:
    assert (
        encode("SET", "k", b"\r\n", 5) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\r\n\r\n$1\r\n5\r\n"
    )


@pytest.fixture
def server() -> Iterator[tuple[int, list[bytes]]]:
    """A server on port 0 that answers each command with the next canned reply."""
    replies = [
        b"+PONG\r\n",
        b"$5\r\nhello\r\n",
        b"$-1\r\n",
        b":42\r\n",
        b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n",
        b"-WRONGPASS invalid username-password pair\r\n",
        b"?what\r\n",
    ]
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            for reply in replies:
                received.append(conn.recv(4096))
                conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield listener.getsockname()[1], received
    thread.join(10)
    listener.close()


def test_replies_of_every_kind(server: tuple[int, list[bytes]]) -> None:
    port, received = server
    with RespConnection("127.0.0.1", port, timeout=5) as conn:
        assert conn.call("PING") == "PONG"
        assert conn.call("GET", "k") == b"hello"
        assert conn.call("GET", "missing") is None
        assert conn.call("INCR", "n") == 42
        assert conn.call("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
        with pytest.raises(RespError, match=r"^WRONGPASS"):
            conn.call("AUTH", "x")
        with pytest.raises(ConnectionError, match="not a RESP reply"):
            conn.call("PING")
    assert received[0] == b"*1\r\n$4\r\nPING\r\n"


def test_a_closed_connection_is_an_os_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        conn = RespConnection("127.0.0.1", listener.getsockname()[1], timeout=5)
        listener.accept()[0].close()
        with conn, pytest.raises(OSError):
            conn.call("PING")


def test_parse_info_skips_headers_and_keeps_values_with_colons() -> None:
    text = "# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0\r\nx:a:b\r\n"
    assert parse_info(text) == {
        "redis_version": "7.0.15",
        "db0": "keys=3,expires=0",
        "x": "a:b",
    }
