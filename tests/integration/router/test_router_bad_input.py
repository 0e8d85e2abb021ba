"""Bad input from either side: malformed requests, invalid header names, absurd framing, hosts
naming no app, slow clients, and dynos that answer garbage or stop mid-body. Each gets a clean
answer (an error page, or a closed connection once a response has begun), a log line where an
app is known, and the router goes on serving everyone else."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from tests.integration.router.router_harness import (
    Client,
    app,
    dyno,
    fields,
    running_router,
)

from kapal.router import AppRoute, Router, UpDyno

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})


class RawDyno:
    """A dyno that reads one request head (and its Content-Length body), then sends `answer`
    as it is (a list: its parts, a moment apart) and closes the connection (or, `hold`, keeps
    it open)."""

    def __init__(self, answer: bytes | list[bytes], *, hold: bool = False) -> None:
        self.answer = answer if isinstance(answer, list) else [answer]
        self.hold = hold
        self.port = 0
        self.served = 0
        self._server: asyncio.Server | None = None
        self._release = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    await reader.readexactly(int(value))
            self.served += 1
            for number, part in enumerate(self.answer):
                if number:
                    await asyncio.sleep(0.05)
                writer.write(part)
                await writer.drain()
            if self.hold:
                await self._release.wait()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["RawDyno"]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._release.set()
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


def routed(port: int) -> AppRoute:
    return app(up=(UpDyno("web.1", port),))


@contextlib.asynccontextmanager
async def sweeping(router: Router) -> AsyncIterator[None]:
    """The router's periodic sweep, often (Router.run does it once a second)."""

    async def sweep() -> None:
        while True:
            await asyncio.sleep(0.05)
            router.sweep()

    task = asyncio.ensure_future(sweep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(
    "line",
    [
        b"Bad Header: x",  # a space in the name
        b"X\x01Y: z",  # a control character
        b"X(Y): z",  # a separator
        b": no name",
        b"NoColon",
        b"X-Ok: bad\x00value",
        b" X-Folded: continued",  # obsolete line folding, first line
    ],
)
async def test_an_invalid_header_gets_400_and_a_close(line: bytes) -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, _):
        client = await Client.open(router.port)
        await client.send(b"GET /echo HTTP/1.1\r\nHost: demo.localhost\r\n" + line + b"\r\n\r\n")
        response = await client.response()
        assert await client.at_eof()
        await client.close()
        good = await Client.open(router.port)
        after = await good.request()
        await good.close()
    assert response.status == 400
    assert response.header("connection") == "close"
    assert web.requests and all(r.target == "/echo" for r in web.requests)
    assert len(web.requests) == 1  # only the good one reached the dyno
    assert after.status == 200


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 99999999999999999999999999",
        b"Content-Length: -1",
        b"Content-Length: 12abc",
        b"Content-Length: 1\r\nContent-Length: 2",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: gzip",
        b"Transfer-Encoding: chunked, gzip",
    ],
)
async def test_absurd_or_ambiguous_framing_gets_400_and_a_close(framing: bytes) -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(
            b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\n" + framing + b"\r\n\r\nhello"
        )
        response = await client.response()
        assert await client.at_eof()
        await client.close()
    assert response.status == 400
    assert web.requests == []  # nothing the router could not frame reaches a dyno
    assert [fields(m)["code"] for m in sink.messages] == ["H26"]


async def test_a_huge_content_length_is_streamed_not_buffered_and_the_client_may_leave() -> None:
    """A big (but valid) Content-Length is the app's business; leaving midway is an H27."""
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(
            b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 1000000000000\r\n\r\n"
            + b"x" * 100_000
        )
        async with asyncio.timeout(10):
            await web.first_body_bytes.wait()
        await client.close()
        (message,) = await sink.wait(1)
        good = await Client.open(router.port)
        after = await good.request()
        await good.close()
    assert fields(message)["code"] == "H27"
    assert after.status == 200


@pytest.mark.parametrize(
    "host",
    [b"nope.localhost", b"localhost", b"demo.localhost.evil", b"\xff\xfe", b"demo", b"[::1]"],
)
async def test_a_host_naming_no_app_gets_404(host: bytes) -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        response = await client.response()
        again = await client.request()  # the connection stays usable
        await client.close()
    assert response.status == 404
    assert again.status == 200
    assert len(web.requests) == 1
    assert len(sink.lines) == 1  # only the request for demo is an app's


async def test_a_slowloris_client_is_cut_off_and_others_are_served() -> None:
    async with (
        dyno() as web,
        running_router(app(up=(web.up(),)), client_idle_timeout=0.5) as (router, _),
        sweeping(router),
    ):
        slow = await Client.open(router.port)
        await slow.send(b"GET /echo HTTP/1.1\r\nHost: demo.localhost\r\n")
        served = 0
        closed = False
        async with asyncio.timeout(10):
            while not closed:
                # A byte now and then never buys the head more time.
                with contextlib.suppress(ConnectionError):
                    await slow.send(b"X")
                other = await Client.open(router.port)
                served += (await other.request()).status == 200
                await other.close()
                closed = slow.reader.at_eof() or slow.writer.is_closing()
                if not closed:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            closed = await slow.reader.read(1) == b""
        await slow.close()
    assert served >= 1
    assert not any(r.header("x") for r in web.requests)  # the slow head never reached it


async def test_a_client_that_stops_sending_its_body_is_cut_off() -> None:
    """H28: a request body that stops coming holds no dyno connection for ever."""
    async with (
        dyno() as web,
        running_router(app(up=(web.up(),)), idle_timeout=0.3) as (router, sink),
        sweeping(router),
    ):
        client = await Client.open(router.port)
        await client.send(
            b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 10\r\n\r\nabc"
        )
        response = await client.response()
        assert await client.at_eof()
        await client.close()
        (message,) = await sink.wait(1)
        assert not web.requests  # the dyno never got a whole request
    assert response.status == 408
    assert fields(message)["code"] == "H28"
    assert fields(message)["desc"] == "Client Connection Idle"


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 600 Odd\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 999 Odd\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"\x00\x01\x02\x03" * 100,
    ],
)
async def test_a_garbage_response_is_an_h17(answer: bytes) -> None:
    async with RawDyno(answer).running() as raw, running_router(routed(raw.port)) as (r, sink):
        client = await Client.open(r.port)
        response = await client.request(path="/x")
        second = await client.request(path="/y")  # the client's connection is still good
        await client.close()
    assert response.status == second.status == 503
    assert b"Application error" in response.body or response.body
    assert fields(sink.messages[0])["code"] == "H17"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", b"zz\r\n"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", b"lo and more than it said"],
    ],
)
async def test_a_response_cut_short_is_an_h18_and_a_closed_connection(
    answer: bytes | list[bytes],
) -> None:
    async with RawDyno(answer).running() as raw, running_router(routed(raw.port)) as (r, sink):
        client = await Client.open(r.port)
        await client.send(b"GET /x HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        async with asyncio.timeout(10):
            received = await client.reader.read()  # until the router closes
        await client.close()
        good = await Client.open(r.port)
        await good.send(b"GET /y HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        async with asyncio.timeout(10):
            assert (await good.reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
        await good.close()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    sent = b"".join(answer) if isinstance(answer, list) else answer
    assert len(received) < len(sent) + 200  # nothing made up after what the dyno sent
    assert fields(sink.messages[0])["code"] == "H18"
    assert raw.served == 2


async def test_an_oversized_response_head_is_an_h25() -> None:
    answer = b"HTTP/1.1 200 OK\r\nX-Big: " + b"v" * (2 << 20)
    async with (
        RawDyno(answer, hold=True).running() as raw,
        running_router(routed(raw.port)) as (r, sink),
    ):
        client = await Client.open(r.port)
        response = await client.request()
        await client.close()
    assert response.status == 502
    assert fields(sink.messages[0])["code"] == "H25"


@pytest.mark.parametrize(
    "bad",
    [
        b"hello",  # not even a method
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_requests_before_a_bad_pipelined_one_are_answered_first(bad: bytes) -> None:
    good = b"GET /echo HTTP/1.1\r\nHost: demo.localhost\r\n\r\n"
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(good + good + bad)
        first, second, third = [await client.response() for _ in range(3)]
        assert await client.at_eof()
        await client.close()
    assert (first.status, second.status, third.status) == (200, 200, 400)
    assert third.header("connection") == "close"
    assert len(web.requests) == 2
    assert [fields(m)["status"] for m in sink.messages][:2] == ["200", "200"]


@pytest.mark.parametrize(
    "line",
    [
        b"GET / HTTP/9.9",
        b"GET / HTTP/1.1 extra",
        b"GET /a b HTTP/1.1",
        b"GET /\x00 HTTP/1.1",
        b"G@T / HTTP/1.1",
        b"GET",
        b"/ HTTP/1.1",
        b"\xff\xfe / HTTP/1.1",
    ],
)
async def test_a_malformed_request_line_gets_400_and_a_close(line: bytes) -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, _):
        client = await Client.open(router.port)
        await client.send(line + b"\r\nHost: demo.localhost\r\n\r\n")
        response = await client.response()
        assert await client.at_eof()
        await client.close()
    assert response.status == 400
    assert response.header("connection") == "close"
    assert web.requests == []
