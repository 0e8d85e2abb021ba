"""Just enough AMQP 0-9-1 to log in to a vhost: Start/Start-Ok, Tune/Tune-Ok, Open/Open-Ok
with PLAIN auth on a raw socket (no client library in the test dependencies for this)."""

from __future__ import annotations

import socket
import struct
from urllib.parse import unquote, urlsplit

FRAME_METHOD = 1
FRAME_END = b"\xce"
START, START_OK, TUNE, TUNE_OK, OPEN, OPEN_OK, CLOSE = (
    (10, 10),
    (10, 11),
    (10, 30),
    (10, 31),
    (10, 40),
    (10, 41),
    (10, 50),
)


class Refused(Exception):
    """The server closed the connection: (reply code, text), or (0, why) without a Close."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


def shortstr(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


def longstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def method_frame(method: tuple[int, int], args: bytes) -> bytes:
    payload = struct.pack(">HH", *method) + args
    return struct.pack(">BHI", FRAME_METHOD, 0, len(payload)) + payload + FRAME_END


def read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise Refused(0, "connection closed by the server")
        data += chunk
    return data


def read_method(sock: socket.socket) -> tuple[tuple[int, int], bytes]:
    kind, _channel, size = struct.unpack(">BHI", read_exact(sock, 7))
    payload = read_exact(sock, size + 1)[:-1]
    assert kind == FRAME_METHOD, f"expected a method frame, got type {kind}"
    method = struct.unpack(">HH", payload[:4])
    if method == CLOSE:
        code = struct.unpack(">H", payload[4:6])[0]
        text = payload[7 : 7 + payload[6]].decode()
        raise Refused(code, text)
    return method, payload[4:]


def open_vhost(url: str, timeout: float = 10.0) -> None:
    """Log in with the URL's user and password and open its vhost; raises Refused."""
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    with socket.create_connection(
        (parts.hostname or "localhost", parts.port or 5672), timeout
    ) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        method, _ = read_method(s)
        assert method == START, method
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
        # Asking for authentication_failure_close makes a bad login a Close with 403.
        capabilities = shortstr("authentication_failure_close") + b"t\x01"
        properties = shortstr("capabilities") + b"F" + longstr(capabilities)
        args = longstr(properties) + shortstr("PLAIN") + longstr(response) + shortstr("en_US")
        s.sendall(method_frame(START_OK, args))
        method, tune = read_method(s)
        assert method == TUNE, method
        s.sendall(method_frame(TUNE_OK, tune[:8]))
        s.sendall(method_frame(OPEN, shortstr(vhost) + shortstr("") + b"\x00"))
        method, _ = read_method(s)
        assert method == OPEN_OK, method
