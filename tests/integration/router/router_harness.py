"""Test pieces for the router: a fake dyno (a real HTTP server on a free port), a raw HTTP
client, a log sink that keeps lines, and a router running on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from kapal.domain.logline import LogLine
from kapal.router import AppRoute, Router, RouterConfig, RouteTable, UpDyno

BIG = bytes(range(256)) * (10 * 1024 * 1024 // 256)  # 10 MiB
WAIT = 10.0  # upper bound for anything a test waits for; never a timing assertion


class ListSink:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def send(self, line: LogLine) -> None:
        self.lines.append(line)

    @property
    def messages(self) -> list[str]:
        return [line.message for line in self.lines]

    async def wait(self, count: int = 1) -> list[str]:
        async with asyncio.timeout(WAIT):
            while len(self.lines) < count:
                await asyncio.sleep(0.01)
        return self.messages


def fields(message: str) -> dict[str, str]:
    """key=value pairs of a router log line (quoted values unquoted)."""
    out: dict[str, str] = {}
    rest = message
    while rest:
        key, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
            rest = rest.lstrip(" ")
        else:
            value, _, rest = rest.partition(" ")
        out[key.strip()] = value
    return out


@dataclass
class Received:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    conn: int

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw_body: bytes = b""

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def json(self) -> dict[str, object]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    first, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = []
    for line in lines:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return first, headers


async def read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Decoded body and the raw bytes as they came."""
    body, raw = [], []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        raw.append(size_line)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            trailer = await reader.readuntil(b"\r\n")
            raw.append(trailer)
            while trailer != b"\r\n":
                trailer = await reader.readuntil(b"\r\n")
                raw.append(trailer)
            return b"".join(body), b"".join(raw)
        data = await reader.readexactly(size + 2)
        raw.append(data)
        body.append(data[:-2])


class FakeDyno:
    """An app's web process. Paths choose behaviours:
    /echo (default) JSON of what arrived; /big 10 MiB; /chunked; /eof (body ends at close);
    /close (closes without answering); /hang (never answers); /flaky (answers only the first
    request of each connection); /ws (101, then echoes bytes)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.first_body_bytes = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._hang = asyncio.Event()
        self._conns = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> FakeDyno:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._hang.set()
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def up(self, name: str = "web.1") -> UpDyno:
        return UpDyno(name, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns += 1
        conn = self._conns
        served = 0
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                first, headers = parse_head(head)
                method, target, version = first.split(" ")
                request = Received(method, target, version, headers, b"", conn)
                try:
                    request.body = await self._read_body(reader, request)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(request)
                path = target.split("?")[0]
                if path == "/close" or (path == "/flaky" and served):
                    return
                if path == "/hang":
                    await self._hang.wait()
                    return
                if path == "/ws":
                    await self._tunnel(reader, writer)
                    return
                served += 1
                keep = await self._answer(writer, path, request)
                await writer.drain()
                if not keep or (request.header("connection") or "").lower() == "close":
                    return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _read_body(self, reader: asyncio.StreamReader, request: Received) -> bytes:
        if (request.header("transfer-encoding") or "").lower().endswith("chunked"):
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return b"".join(parts)
                parts.append((await reader.readexactly(size + 2))[:-2])
                self.first_body_bytes.set()
        length = int(request.header("content-length") or 0)
        parts = []
        while length:
            data = await reader.read(min(length, 65536))
            if not data:
                raise ConnectionError("body cut short")
            parts.append(data)
            length -= len(data)
            self.first_body_bytes.set()
        return b"".join(parts)

    async def _answer(self, writer: asyncio.StreamWriter, path: str, request: Received) -> bool:
        if path == "/big":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BIG))
            if request.method != "HEAD":
                for i in range(0, len(BIG), 1 << 20):
                    writer.write(BIG[i : i + (1 << 20)])
                    await writer.drain()
            return True
        if path == "/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"hello ", b"chunked ", b"world"):
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            return True
        if path == "/eof":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
            return False
        body = json.dumps(
            {
                "method": request.method,
                "target": request.target,
                "version": request.version,
                "headers": request.headers,
                "body_sha256": hashlib.sha256(request.body).hexdigest(),
                "body_len": len(request.body),
                "conn": request.conn,
            }
        ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Keep-Alive: timeout=60\r\n\r\n%s" % (len(body), body)
        )
        return True

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        while data := await reader.read(65536):
            writer.write(b"echo:" + data)
            await writer.drain()


class Client:
    """A raw HTTP/1.1 client on one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, *, head: bool = False) -> Response:
        async with asyncio.timeout(WAIT):
            first, headers = parse_head(await self.reader.readuntil(b"\r\n\r\n"))
            status = int(first.split(" ")[1])
            response = Response(status, headers, b"")
            encoding = (response.header("transfer-encoding") or "").lower()
            if head or status in (204, 304) or 100 <= status < 200:
                return response
            if encoding.endswith("chunked"):
                response.body, response.raw_body = await read_chunked(self.reader)
            elif response.header("content-length") is not None:
                response.body = await self.reader.readexactly(
                    int(response.header("content-length") or 0)
                )
            else:
                response.body = await self.reader.read()
            return response

    async def request(
        self,
        method: str = "GET",
        path: str = "/echo",
        host: str = "demo.localhost",
        extra: bytes = b"",
    ) -> Response:
        await self.send(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n".encode() + extra + b"\r\n")
        return await self.response(head=method == "HEAD")

    async def at_eof(self) -> bool:
        """True once the router has closed this connection."""
        async with asyncio.timeout(WAIT):
            try:
                return await self.reader.read(1) == b""
            except ConnectionError:
                return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def app(name: str = "demo", app_id: str = "app-1", **state: object) -> AppRoute:
    state.setdefault("web_quantity", 1)
    return AppRoute(app_id, name, **state)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_router(
    *routes: AppRoute, source: Callable[[], RouteTable] | None = None, **config: object
) -> AsyncIterator[tuple[Router, ListSink]]:
    sink = ListSink()
    table = RouteTable.of(*routes)
    router = Router(RouterConfig(port=0, **config), source or (lambda: table), sink)  # type: ignore[arg-type]
    await router.start()
    try:
        yield router, sink
    finally:
        await router.close(grace=1.0)


@contextlib.asynccontextmanager
async def dyno() -> AsyncIterator[FakeDyno]:
    fake = await FakeDyno().start()
    try:
        yield fake
    finally:
        await fake.close()


@dataclass
class Closed:
    """A port nothing listens on."""

    port: int = field(default=0)

    def up(self, name: str = "web.2") -> UpDyno:
        return UpDyno(name, self.port)


async def closed_port() -> Closed:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return Closed(port)
