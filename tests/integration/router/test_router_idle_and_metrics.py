"""What the router counts per app and minute, and H15: responses and tunnels that went idle."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from tests.integration.router.router_harness import (
    WAIT,
    Client,
    app,
    closed_port,
    dyno,
    fields,
    running_router,
)

from kapal.domain.metrics import percentile
from kapal.router import UpDyno

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: demo.localhost\r\nConnection: Upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})


class StallingDyno:
    """Sends a response head and the first bytes of its body, then sends more only when
    told (`more`), and never ends the response."""

    def __init__(self) -> None:
        self.port = 0
        self.more: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst")
        try:
            while True:
                more = asyncio.ensure_future(self.more.get())
                gone = asyncio.ensure_future(until_closed(reader))
                done, _ = await asyncio.wait({more, gone}, return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    more.cancel()
                    return
                gone.cancel()
                writer.write(more.result())
        finally:
            self.closed.set()
            writer.close()


async def until_closed(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass  # a request body, not read by the app


@contextlib.asynccontextmanager
async def stalling_dyno() -> AsyncIterator[StallingDyno]:
    fake = StallingDyno()
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()


async def test_requests_are_counted_per_app_by_status_class_and_time() -> None:
    closed = await closed_port()
    async with (
        dyno() as web,
        running_router(
            app(up=(web.up(),)), app("down", "app-2", up=(closed.up(),)), app("gone", "app-3")
        ) as (router, sink),
    ):
        client = await Client.open(router.port)
        for _ in range(3):
            assert (await client.request()).status == 200
        assert (await client.request(host="down.localhost")).status == 503
        assert (await client.request(host="nope.localhost")).status == 404  # no app: no count
        await client.close()
        await sink.wait(4)
        counts = {c.app_id: c for c in router.metrics.take()}
    assert set(counts) == {"app-1", "app-2"}
    demo, down = counts["app-1"], counts["app-2"]
    assert (demo.requests, demo.status) == (3, [0, 3, 0, 0, 0])
    assert sum(demo.histogram) == 3
    services = [int(fields(m)["service"].removesuffix("ms")) for m in sink.messages[:3]]
    p99 = percentile(demo.histogram, 0.99)
    assert p99 is not None and p99 >= max(services) - 1  # the bucket's bound, never below
    assert (down.requests, down.status) == (1, [0, 0, 0, 0, 1])


async def test_h15_when_a_response_stalls_after_its_head() -> None:
    async with (
        stalling_dyno() as web,
        running_router(app(up=(UpDyno("web.1", web.port),)), idle_timeout=0.0) as (router, sink),
    ):
        client = await Client.open(router.port)
        await client.send(b"GET /stream HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        async with asyncio.timeout(WAIT):
            head = await client.reader.readuntil(b"\r\n\r\n")
            assert await client.reader.readexactly(5) == b"first"
        router.sweep()  # sees the response for the first time
        await web.more.put(b"-more")  # bytes moved since: the window starts again
        async with asyncio.timeout(WAIT):
            assert await client.reader.readexactly(5) == b"-more"
        router.sweep()
        assert sink.lines == []
        router.sweep()  # nothing moved since the last sweep, for (at least) 0 s
        assert await client.at_eof()  # the client's side is closed...
        async with asyncio.timeout(WAIT):
            await web.closed.wait()  # ...and the dyno's
        await client.close()
        counts = router.metrics.take()
    assert head.startswith(b"HTTP/1.1 200 OK")
    (message,) = sink.messages
    logged = fields(message)
    assert (logged["at"], logged["code"], logged["desc"]) == ("error", "H15", "Idle connection")
    assert (logged["status"], logged["bytes"]) == ("503", "10")
    assert message.startswith('at=error code=H15 desc="Idle connection" method=GET')
    assert [c.status for c in counts] == [[0, 0, 0, 0, 1]]


async def test_a_response_is_not_idle_while_the_client_uploads() -> None:
    async with (
        stalling_dyno() as web,
        running_router(app(up=(UpDyno("web.1", web.port),)), idle_timeout=0.0) as (router, sink),
    ):
        client = await Client.open(router.port)
        await client.send(
            b"POST /upload HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 100\r\n\r\n"
        )
        async with asyncio.timeout(WAIT):
            await client.reader.readuntil(b"first")
        router.sweep()
        await client.send(b"x" * 10)  # the dyno does not read it: it only reaches the socket
        conn = next(iter(router.clients)).active.upstream  # type: ignore[union-attr]
        async with asyncio.timeout(WAIT):
            while conn is None or conn.moved < 10:
                await asyncio.sleep(0.01)
        router.sweep()
        assert sink.lines == []
        router.sweep()
        assert fields((await sink.wait(1))[0])["code"] == "H15"
        await client.close()


async def test_an_idle_websocket_tunnel_is_closed_and_logged() -> None:
    async with (
        dyno() as web,
        running_router(app(up=(web.up(),)), idle_timeout=0.0) as (router, sink),
    ):
        client = await Client.open(router.port)
        await client.send(UPGRADE)
        assert (await client.response()).status == 101
        await sink.wait(1)
        router.sweep()
        await client.send(b"ping")
        async with asyncio.timeout(WAIT):
            assert await client.reader.readexactly(9) == b"echo:ping"
        router.sweep()  # bytes moved: still open
        assert len(sink.lines) == 1
        router.sweep()
        assert await client.at_eof()
        await client.close()
        counts = router.metrics.take()
    first, idle = sink.messages
    assert fields(first)["status"] == "101"
    logged = fields(idle)
    assert (logged["code"], logged["desc"], logged["path"]) == ("H15", "Idle connection", "/ws")
    assert [c.requests for c in counts] == [1]  # the tunnel's request, counted once


async def test_the_periodic_sweep_ends_idle_responses() -> None:
    async with (
        stalling_dyno() as web,
        running_router(
            app(up=(UpDyno("web.1", web.port),)), idle_timeout=0.05, sweep_interval=0.02
        ) as (router, sink),
    ):
        upkeep = asyncio.ensure_future(router.run(interval=0.5))
        try:
            client = await Client.open(router.port)
            await client.send(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
            async with asyncio.timeout(WAIT):
                await client.reader.read()  # until the router closes the connection
            await client.close()
        finally:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
    assert fields(sink.messages[0])["code"] == "H15"
