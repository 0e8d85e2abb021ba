import asyncio
import hashlib

import pytest
from tests.integration.router.router_harness import (
    BIG,
    Client,
    app,
    closed_port,
    dyno,
    fields,
    running_router,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})


async def test_response_passes_through_with_forwarding_headers_added() -> None:
    request_id = "client-id-0123456789+/="
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request(
            path="/echo?x=1",
            host="Demo.localhost:8080",
            extra=(
                b"X-Forwarded-For: 9.9.9.9\r\nX-Request-Id: " + request_id.encode() + b"\r\n"
                b"Keep-Alive: 300\r\nX-Forwarded-Proto: https\r\n"
            ),
        )
        await client.close()
    assert response.status == 200
    assert response.header("via") == "1.1 kapal"
    assert response.header("keep-alive") is None  # hop-by-hop from the dyno
    seen = web.requests[0]
    assert (seen.method, seen.target, seen.version) == ("GET", "/echo?x=1", "HTTP/1.1")
    assert seen.header("host") == "Demo.localhost:8080"
    assert seen.header("x-forwarded-for") == "9.9.9.9, 127.0.0.1"
    assert seen.header("x-forwarded-proto") == "http"
    assert seen.header("x-forwarded-port") == str(router.port)
    assert seen.header("x-request-id") == request_id
    assert seen.header("via") == "1.1 kapal"
    assert seen.header("keep-alive") is None
    assert int(seen.header("x-request-start") or 0) // 1000 == int(sink.lines[0].time)
    assert response.json()["target"] == "/echo?x=1"

    (line,) = sink.lines
    assert (line.app_id, line.source, line.dyno) == ("app-1", "kapal", "router")
    logged = fields(line.message)
    assert logged["at"] == "info"
    assert logged["method"] == "GET"
    assert logged["path"] == "/echo?x=1"
    assert logged["host"] == "demo.localhost"
    assert logged["request_id"] == request_id
    assert logged["fwd"] == "9.9.9.9, 127.0.0.1"
    assert logged["dyno"] == "web.1"
    assert logged["connect"].endswith("ms") and logged["service"].endswith("ms")
    assert logged["status"] == "200"
    assert logged["bytes"] == str(len(response.body))
    assert logged["protocol"] == "http"


async def test_a_bad_client_request_id_is_replaced() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.request(extra=b"X-Request-Id: short\r\n")
        await client.close()
    new_id = web.requests[0].header("x-request-id")
    assert new_id is not None and new_id != "short" and len(new_id) == 36
    assert fields(sink.messages[0])["request_id"] == new_id


async def test_keep_alive_on_both_sides() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        for i in range(3):
            response = await client.request(path=f"/echo/{i}")
            assert response.status == 200
        await client.close()
    assert [r.target for r in web.requests] == ["/echo/0", "/echo/1", "/echo/2"]
    assert len({r.conn for r in web.requests}) == 1  # one pooled dyno connection
    assert len(sink.lines) == 3


async def test_http10_clients() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, _):
        plain = await Client.open(router.port)
        await plain.send(b"GET /chunked HTTP/1.0\r\nHost: demo.localhost\r\n\r\n")
        response = await plain.response()
        assert response.status == 200
        assert response.header("connection") == "close"
        assert await plain.at_eof()
        await plain.close()

        kept = await Client.open(router.port)
        for _ in range(2):
            await kept.send(
                b"GET /echo HTTP/1.0\r\nHost: demo.localhost\r\nConnection: keep-alive\r\n\r\n"
            )
            response = await kept.response()
            assert response.status == 200
            assert response.header("connection") == "keep-alive"
        await kept.close()
    # 1.0 requests reach the dyno as 1.0, so it never answers them chunked.
    assert {r.version for r in web.requests} == {"HTTP/1.0"}


async def test_chunked_request_body_is_streamed() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(
            b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nfirst\r\n"
        )
        # The dyno has the first chunk while the client has not finished the body.
        await asyncio.wait_for(web.first_body_bytes.wait(), 10)
        await client.send(b"7\r\n second\r\n0\r\n\r\n")
        response = await client.response()
        await client.close()
    assert response.status == 200
    assert response.json()["body_sha256"] == hashlib.sha256(b"first second").hexdigest()
    assert web.requests[0].header("transfer-encoding") == "chunked"
    assert fields(sink.messages[0])["method"] == "POST"


async def test_content_length_request_body_is_streamed() -> None:
    body = b"x" * 300_000
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, _):
        client = await Client.open(router.port)
        await client.send(
            b"PUT /echo HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body[:1000]
        )
        await asyncio.wait_for(web.first_body_bytes.wait(), 10)
        await client.send(body[1000:])
        response = await client.response()
        await client.close()
    assert response.json()["body_len"] == len(body)
    assert response.json()["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_a_10_mib_response_is_streamed_intact() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request(path="/big")
        again = await client.request(path="/echo")  # the connection is still in step
        await client.close()
    assert response.status == 200
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(BIG).digest()
    assert again.status == 200
    assert fields(sink.messages[0])["bytes"] == str(len(BIG))


async def test_chunked_responses_pass_through_raw() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request(path="/chunked")
        again = await client.request(path="/chunked")
        await client.close()
    assert response.body == again.body == b"hello chunked world"
    assert response.raw_body == b"6\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n"
    assert fields(sink.messages[0])["bytes"] == str(len(response.raw_body))
    assert len({r.conn for r in web.requests}) == 1


async def test_head_responses_have_no_body() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        head = await client.request(method="HEAD", path="/big")
        after = await client.request(path="/echo")
        await client.close()
    assert head.status == 200
    assert head.header("content-length") == str(len(BIG))
    assert after.json()["method"] == "GET"  # no stray body bytes came before it
    assert fields(sink.messages[0])["bytes"] == "0"


async def test_a_response_ended_by_close_reaches_the_client_whole() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request(path="/eof")
        assert await client.at_eof()
        await client.close()
    assert response.body == b"until the end"
    assert response.header("connection") == "close"
    assert fields(sink.messages[0])["status"] == "200"


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(
            b"".join(b"GET /echo/%d HTTP/1.1\r\nHost: demo.localhost\r\n\r\n" % i for i in range(5))
            + b"POST /echo/5 HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 3\r\n\r\nabc"
        )
        targets = [(await client.response()).json()["target"] for _ in range(6)]
        await client.close()
    assert targets == [f"/echo/{i}" for i in range(6)]
    assert len(sink.lines) == 6


async def test_expect_100_continue_is_answered_by_the_router() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, _):
        client = await Client.open(router.port)
        await client.send(
            b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        interim = await client.response()
        await client.send(b"data")
        final = await client.response()
        await client.close()
    assert interim.status == 100
    assert final.status == 200
    assert final.json()["body_len"] == 4
    assert web.requests[0].header("expect") is None


async def test_websocket_upgrade_becomes_a_tunnel() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(
            b"GET /ws HTTP/1.1\r\nHost: demo.localhost\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        response = await client.response()
        await client.send(b"ping")
        echoed = await asyncio.wait_for(client.reader.readexactly(9), 10)
        await client.close()
    assert response.status == 101
    assert response.header("upgrade") == "websocket"
    assert echoed == b"echo:ping"
    assert web.requests[0].header("upgrade") == "websocket"
    assert fields(sink.messages[0])["status"] == "101"


async def test_a_refused_dyno_is_skipped_for_another() -> None:
    closed = await closed_port()
    async with (
        dyno() as web,
        running_router(app(up=(closed.up("web.2"), web.up("web.1")))) as (
            router,
            sink,
        ),
    ):
        for _ in range(6):
            client = await Client.open(router.port)
            assert (await client.request()).status == 200
            await client.close()
    assert {fields(m)["dyno"] for m in sink.messages} == {"web.1"}


async def test_a_pooled_connection_closed_by_the_app_is_retried_once() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        first = await client.request(path="/flaky")
        # The router reuses the pooled connection; the app drops it without answering.
        second = await client.request(path="/flaky")
        await client.close()
    assert first.status == second.status == 200
    assert [r.conn for r in web.requests] == [1, 1, 2]
    assert [fields(m)["status"] for m in sink.messages] == ["200", "200"]


async def test_route_table_refresh_pulls_a_fresh_snapshot() -> None:
    async with dyno() as web:
        tables = [app(web_quantity=0), app(up=(web.up(),))]
        from kapal.router import RouteTable

        current = {"route": tables[0]}
        async with running_router(source=lambda: RouteTable.of(current["route"])) as (
            router,
            _,
        ):
            client = await Client.open(router.port)
            assert (await client.request()).status == 503
            current["route"] = tables[1]
            await router.refresh()
            assert (await client.request()).status == 200
            await client.close()


async def test_idle_client_connections_are_swept() -> None:
    async with (
        dyno() as web,
        running_router(app(up=(web.up(),)), client_idle_timeout=0.0) as (
            router,
            _,
        ),
    ):
        client = await Client.open(router.port)
        assert (await client.request()).status == 200
        router.sweep()
        assert await client.at_eof()
        await client.close()


async def test_shutdown_lets_a_request_in_flight_finish() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, _):
        client = await Client.open(router.port)
        await client.send(b"GET /big HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), 10)
        closing = asyncio.ensure_future(router.close(grace=10.0))
        body = await asyncio.wait_for(client.reader.readexactly(len(BIG)), 10)
        assert await client.at_eof()
        await client.close()
        await closing
    assert body == BIG
