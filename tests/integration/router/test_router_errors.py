import asyncio

import pytest
from tests.integration.router.router_harness import (
    Client,
    app,
    closed_port,
    dyno,
    fields,
    running_router,
)

from kapal.router import RouteTable

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})


async def wait_parked(router: object, count: int = 1) -> None:
    async with asyncio.timeout(10):
        while len(router.parked) < count:  # type: ignore[attr-defined]
            await asyncio.sleep(0.01)


def assert_error_line(message: str, code: str, desc: str, status: int, nbytes: int) -> None:
    logged = fields(message)
    assert logged["code"] == code
    assert logged["desc"] == desc
    assert logged["status"] == str(status)
    assert logged["bytes"] == str(nbytes)
    assert logged["host"] == "demo.localhost"
    assert logged["protocol"] == "http"


async def test_unknown_host_gets_the_no_such_app_page_and_no_log_line() -> None:
    async with running_router(app()) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request(host="nope.localhost")
        await client.send(b"GET / HTTP/1.0\r\n\r\n")  # no Host at all
        no_host = await client.response()
        await client.close()
    assert response.status == no_host.status == 404
    assert b"No such app" in response.body
    assert sink.lines == []


@pytest.mark.parametrize(
    ("state", "code", "desc", "level", "words"),
    [
        ({"web_quantity": 0}, "H14", "No web processes running", "error", b"kapal logs --tail"),
        ({"crashed": 2}, "H10", "App crashed", "error", b"kapal logs --tail"),
        ({"deployed": False}, "H81", "Blank app", "info", b"git push"),
        ({"maintenance": True}, "H80", "Maintenance mode", "info", b"maintenance"),
    ],
)
async def test_app_states_get_their_page_and_h_code(
    state: dict[str, object], code: str, desc: str, level: str, words: bytes
) -> None:
    async with running_router(app(**state)) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request(path="/x")
        again = await client.request(path="/x")  # the connection stays usable
        await client.close()
    assert response.status == again.status == 503
    assert words in response.body
    assert len(sink.lines) == 2
    assert_error_line(sink.messages[0], code, desc, 503, len(response.body))
    logged = fields(sink.messages[0])
    assert logged["at"] == level
    assert logged["path"] == "/x"
    assert (logged["dyno"], logged["connect"], logged["service"]) == ("", "", "")


async def test_a_request_with_a_body_to_an_error_closes_the_connection() -> None:
    async with running_router(app(web_quantity=0)) as (router, _):
        client = await Client.open(router.port)
        response = await client.request(method="POST", extra=b"Content-Length: 5000000\r\n")
        assert await client.at_eof()
        await client.close()
    assert response.status == 503
    assert response.header("connection") == "close"


async def test_h21_when_every_dyno_refuses() -> None:
    one, two = await closed_port(), await closed_port()
    async with running_router(app(up=(one.up("web.1"), two.up("web.2")))) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request()
        await client.close()
    assert response.status == 503
    assert_error_line(
        sink.messages[0], "H21", "Backend connection refused", 503, len(response.body)
    )
    logged = fields(sink.messages[0])
    assert logged["dyno"] in ("web.1", "web.2")
    assert logged["connect"].endswith("ms")


async def test_h12_when_the_app_does_not_answer_in_time() -> None:
    async with (
        dyno() as web,
        running_router(app(up=(web.up(),)), request_timeout=0.2) as (router, sink),
    ):
        client = await Client.open(router.port)
        response = await client.request(path="/hang")
        after = await client.request(path="/echo")
        await client.close()
    assert response.status == 503
    assert b"kapal logs --tail" in response.body
    assert after.status == 200
    assert_error_line(sink.messages[0], "H12", "Request timeout", 503, len(response.body))
    assert fields(sink.messages[0])["dyno"] == "web.1"
    assert fields(sink.messages[0])["service"].endswith("ms")


async def test_h13_when_the_app_closes_without_answering() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request(path="/close")
        await client.close()
    assert response.status == 503
    assert_error_line(
        sink.messages[0], "H13", "Connection closed without response", 503, len(response.body)
    )
    assert len(web.requests) == 1  # a fresh connection is not retried


async def test_h20_when_no_dyno_boots_in_time() -> None:
    async with running_router(app(starting=1), boot_timeout=0.2) as (router, sink):
        client = await Client.open(router.port)
        response = await client.request()
        await client.close()
    assert response.status == 503
    assert_error_line(sink.messages[0], "H20", "App boot timeout", 503, len(response.body))
    assert not router.parked


async def test_a_request_waits_for_a_booting_dyno() -> None:
    async with dyno() as web, running_router(app(starting=1)) as (router, sink):
        client = await Client.open(router.port)
        await client.send(b"GET /echo HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        await wait_parked(router)
        router.install(RouteTable.of(app(starting=1)))  # still booting: keeps waiting
        assert len(router.parked) == 1
        router.install(RouteTable.of(app(up=(web.up(),))))
        response = await client.response()
        await client.close()
    assert response.status == 200
    assert fields(sink.messages[0])["status"] == "200"
    assert not router.parked


async def test_a_dyno_crashing_while_a_request_waits_gives_h10() -> None:
    async with running_router(app(starting=1)) as (router, sink):
        client = await Client.open(router.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        await wait_parked(router)
        router.install(RouteTable.of(app(crashed=1)))
        response = await client.response()
        await client.close()
    assert response.status == 503
    assert fields(sink.messages[0])["code"] == "H10"


async def test_h27_when_the_client_leaves_early() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(b"GET /hang HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        async with asyncio.timeout(10):
            while not web.requests:
                await asyncio.sleep(0.01)
        await client.close()
        (message,) = await sink.wait(1)
    logged = fields(message)
    assert (logged["at"], logged["code"], logged["status"]) == ("warning", "H27", "499")
    assert logged["desc"] == "Client Request Interrupted"


async def test_h27_when_the_client_leaves_a_waiting_request() -> None:
    async with running_router(app(starting=1)) as (router, sink):
        client = await Client.open(router.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        await wait_parked(router)
        await client.close()
        (message,) = await sink.wait(1)
    assert fields(message)["code"] == "H27"
    assert not router.parked


async def test_oversized_header_gets_431_and_a_log_line() -> None:
    async with running_router(app(web_quantity=0)) as (router, sink):
        client = await Client.open(router.port)
        await client.send(
            b"GET / HTTP/1.1\r\nHost: demo.localhost\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n"
        )
        response = await client.response()
        assert await client.at_eof()
        await client.close()
    assert response.status == 431
    logged = fields(sink.messages[0])
    assert (logged["code"], logged["status"], logged["cause"]) == ("H26", "431", "bad header")


async def test_too_many_headers_get_431() -> None:
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(1001))
    async with running_router(app()) as (router, sink):
        client = await Client.open(router.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: demo.localhost\r\n" + headers + b"\r\n")
        response = await client.response()
        await client.close()
    assert response.status == 431
    assert fields(sink.messages[0])["status"] == "431"


async def test_an_oversized_request_line_gets_400() -> None:
    async with running_router(app()) as (router, sink):
        client = await Client.open(router.port)
        await client.send(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        response = await client.response()
        assert await client.at_eof()
        await client.close()
    assert response.status == 400
    assert sink.lines == []  # the Host header was never read: no app to log to


async def test_a_malformed_request_gets_400_and_a_close() -> None:
    async with running_router(app()) as (router, _):
        client = await Client.open(router.port)
        await client.send(b"GARBAGE\r\n\r\n")
        response = await client.response()
        assert await client.at_eof()
        await client.close()
    assert response.status == 400
    assert response.header("connection") == "close"


async def test_connect_and_unsupported_expect_are_refused() -> None:
    async with running_router(app()) as (router, sink):
        client = await Client.open(router.port)
        await client.send(b"CONNECT demo.localhost:443 HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        assert (await client.response()).status == 405
        await client.close()
        client = await Client.open(router.port)
        response = await client.request(extra=b"Expect: teapot\r\n")
        await client.close()
    assert response.status == 417
    assert [fields(m)["code"] for m in sink.messages] == ["H26", "H26"]


async def test_a_broken_chunked_body_gets_400() -> None:
    async with dyno() as web, running_router(app(up=(web.up(),))) as (router, sink):
        client = await Client.open(router.port)
        await client.send(
            b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\n"
        )
        response = await client.response()
        await client.close()
    assert response.status == 400
    assert fields(sink.messages[0])["cause"] == "bad chunk"


async def test_a_table_whose_dynos_all_refuse_is_reloaded_once() -> None:
    """The old dyno stopped before the router reloaded: a fresh table names the new one."""
    gone = await closed_port()
    async with dyno() as web:
        tables = [RouteTable.of(app(up=(gone.up("web.1"),)))]
        async with running_router(source=lambda: tables[-1]) as (router, sink):
            tables.append(RouteTable.of(app(up=(web.up("web.1"),))))  # not loaded yet
            client = await Client.open(router.port)
            response = await client.request(method="POST", extra=b"Content-Length: 2\r\n\r\nhi")
            await client.close()
    assert response.status == 200
    assert response.json()["body_len"] == 2
    assert fields(sink.messages[0])["status"] == "200"
