from __future__ import annotations

import socket

import pytest
from tests.conftest import free_port

from kapal.client import KapalConnectionError
from kapal.client.rendezvous import Rendezvous, connect, parse_attach_url


def test_parse_attach_url() -> None:
    assert parse_attach_url("rendezvous://localhost:5002/abc-_123") == Rendezvous(
        "localhost", 5002, "abc-_123"
    )
    for bad in ("http://localhost:5002/abc", "rendezvous://localhost/abc", "rendezvous://h:1/"):
        with pytest.raises(ValueError):
            parse_attach_url(bad)


def test_connect_presents_the_secret() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        sock = connect(Rendezvous("127.0.0.1", port, "s3cret"))
        conn, _ = listener.accept()
        with sock, conn:
            assert conn.recv(100) == b"s3cret exit-status\r\n"


def test_connect_refused() -> None:
    with pytest.raises(KapalConnectionError):
        connect(Rendezvous("127.0.0.1", free_port(), "s"))
