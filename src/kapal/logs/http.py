"""A small HTTP/1.1 server for the log session URLs: one GET per connection, answered with a
fixed body or a chunked stream that ends when the handler's iterator does or the client leaves.

The agent serves nothing else over HTTP; a web framework and uvicorn cost it several MB of
memory (issue 4) for features these URLs never use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)

HEAD_LIMIT = 16 * 1024  # bytes of request line and headers
HEAD_TIMEOUT = 30.0  # seconds a client may take to send them
SHUTDOWN_GRACE = 5.0  # seconds responses get to end after close(); then they are cancelled
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query
    headers: Mapping[str, str]  # names in lower case


@dataclass(slots=True)
class Response:
    """A text body, or a stream of text sent as it comes; `on_close` runs however it ends."""

    status: int
    content_type: str
    body: str | AsyncGenerator[str, None]
    headers: Mapping[str, str] = field(default_factory=dict)
    on_close: Callable[[], None] = lambda: None


def text(status: int, body: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", body)


Handler = Callable[[Request], Awaitable[Response]]


def parse_head(head: bytes) -> Request:
    """The request line and headers (up to the blank line); ValueError if malformed."""
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"unsupported version {version!r}")
    headers = {}
    for line in header_lines:
        if line:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise ValueError(f"malformed header line {line!r}")
            headers[name.lower()] = value.strip()
    return Request(method, unquote(urlsplit(target).path), headers)


def response_head(response: Response) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, '')}"]
    lines.append(f"content-type: {response.content_type}")
    if isinstance(response.body, str):
        lines.append(f"content-length: {len(response.body.encode())}")
    else:
        lines.append("transfer-encoding: chunked")
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpServer:
    """`await server.serve()` listens until `close()`; `await server.started.wait()` first to
    learn `port` (useful when bound to port 0)."""

    def __init__(
        self, handler: Handler, host: str, port: int, grace: float = SHUTDOWN_GRACE
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.grace = grace
        self.started = asyncio.Event()
        self._closing = asyncio.Event()
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    def close(self) -> None:
        """Stop listening; serve() returns once open responses have ended (or been cut)."""
        self._closing.set()

    async def serve(self) -> None:
        server = await asyncio.start_server(
            self._connection, self.host, self.port, limit=HEAD_LIMIT
        )
        try:
            self.port = server.sockets[0].getsockname()[1]
            self.started.set()
            await self._closing.wait()
        finally:
            server.close()
            # Not `async with server`: uvloop's wait_closed() also waits for every connection.
            if self._connections:
                _, cut = await asyncio.wait(self._connections, timeout=self.grace)
                for task in cut:
                    # Its reads and writes now fail, which ends it (cancelling the task would
                    # make asyncio's streams log the cancellation as an error).
                    self._connections[task].transport.abort()
                if cut:
                    await asyncio.wait(cut)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The task asyncio runs the connection in: tracked so that close() can end it.
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a connection outside a task")
        self._connections[task] = writer
        try:
            with contextlib.suppress(ConnectionError):
                await self._exchange(reader, writer)
        finally:
            del self._connections[task]
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            request = parse_head(head[:-4])
        except (TimeoutError, asyncio.IncompleteReadError):
            return  # nothing to answer
        except (asyncio.LimitOverrunError, ValueError):
            response = text(400, "Bad Request\n")
        else:
            try:
                response = await self.handler(request)
            except Exception:
                logger.exception("log session request failed")
                response = text(500, "Internal Server Error\n")
        try:
            writer.write(response_head(response))
            if isinstance(response.body, str):
                writer.write(response.body.encode())
                await writer.drain()
            else:
                await _stream(response.body, reader, writer)
        finally:
            response.on_close()
            if not isinstance(response.body, str):
                await response.body.aclose()


async def _stream(
    body: AsyncGenerator[str, None], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Send `body` in chunks until it ends or the client hangs up, whichever comes first."""

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            async for part in body:
                data = part.encode()
                writer.write(b"%x\r\n%b\r\n" % (len(data), data))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def hangup() -> None:
        # A live tail may send nothing for a long time: only reading shows the client left.
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass  # anything sent after the request is ignored

    async with asyncio.TaskGroup() as tasks:
        sending = tasks.create_task(send(), name="log session response")
        watching = tasks.create_task(hangup(), name="log session hang-up")
        await asyncio.wait((sending, watching), return_when=asyncio.FIRST_COMPLETED)
        sending.cancel()
        watching.cancel()
