import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette

from kapal.domain.logline import LogLine
from kapal.logs.hub import LogHub
from kapal.logs.sessions import SessionRequest, session_app, session_server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def line(message: str, dyno: str = "web.1", source: str = "app") -> LogLine:
    return LogLine("app-1", source, dyno, message, 1_700_000_000.0)


def fixed(session: SessionRequest) -> Callable[[str], Awaitable[SessionRequest | None]]:
    async def lookup(secret: str) -> SessionRequest | None:
        return session if secret == "s3cret" else None

    return lookup


@asynccontextmanager
async def serving(hub: LogHub, app: Starlette) -> AsyncIterator[str]:
    server = session_server(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "session server stopped while starting"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        hub.close()
        server.should_exit = True
        await task


async def wait_for_no_subscribers(hub: LogHub) -> None:
    # The server notices the disconnect on its own schedule; the test timeout is the deadline.
    while hub.subscriber_count("app-1"):
        await asyncio.sleep(0.01)


async def read_events(lines: AsyncIterator[str], count: int) -> list[dict[str, str]]:
    """Parse `count` SSE messages (comments skipped) from a line iterator."""
    events: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    async for text in lines:
        if text == "":
            if fields:
                events.append(fields)
                fields = {}
                if len(events) == count:
                    return events
            continue
        if text.startswith(":"):
            continue
        name, _, value = text.partition(": ")
        fields[name] = value
    raise AssertionError(f"stream ended after {events}")


async def test_plain_tail_streams_history_then_live_lines() -> None:
    hub = LogHub()
    for message in ["old", "h1", "h2"]:
        hub.append(line(message))
    hub.append(line("router line", "router", "kapal"))
    session = SessionRequest("app-1", dyno="web", lines=2, tail=True)
    async with (
        serving(hub, session_app(hub, fixed(session))) as base,
        httpx.AsyncClient(base_url=base) as client,
        client.stream("GET", "/sessions/s3cret") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        lines = response.aiter_lines()
        assert await anext(lines) == "2023-11-14T22:13:20.000000+00:00 app[web.1]: h1"
        assert await anext(lines) == "2023-11-14T22:13:20.000000+00:00 app[web.1]: h2"
        hub.append(line("not for this session", "worker.1"))
        hub.append(line("live", "web.2"))
        assert await anext(lines) == "2023-11-14T22:13:20.000000+00:00 app[web.2]: live"
        assert hub.subscriber_count("app-1") == 1
    await wait_for_no_subscribers(hub)


async def test_without_tail_the_stream_ends_after_history() -> None:
    hub = LogHub()
    for i in range(5):
        hub.append(line(str(i)))
    session = SessionRequest("app-1", lines=3, tail=False)
    async with (
        serving(hub, session_app(hub, fixed(session))) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        response = await client.get("/sessions/s3cret")
    assert [text.rsplit(" ", 1)[1] for text in response.text.splitlines()] == ["2", "3", "4"]
    assert hub.subscriber_count("app-1") == 0


async def test_sse_gives_ids_and_resumes_after_last_event_id() -> None:
    hub = LogHub()
    seqs = [hub.append(line(f"m{i}")) for i in range(5)]
    session = SessionRequest("app-1", lines=100, tail=True)
    async with (
        serving(hub, session_app(hub, fixed(session))) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        async with client.stream("GET", "/sessions/s3cret", headers=SSE) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            first = await read_events(response.aiter_lines(), 5)
        assert [int(event["id"]) for event in first] == seqs
        assert first[0]["data"] == "2023-11-14T22:13:20.000000+00:00 app[web.1]: m0"
        await wait_for_no_subscribers(hub)

        hub.append(line("while away"))
        resume = {**SSE, "Last-Event-ID": str(seqs[2])}
        async with client.stream("GET", "/sessions/s3cret", headers=resume) as response:
            lines = response.aiter_lines()
            missed = await read_events(lines, 3)
            hub.append(line("live"))
            (live,) = await read_events(lines, 1)
    assert [event["data"].rsplit(" ", 1)[1] for event in missed] == ["m3", "m4", "away"]
    assert live["data"].endswith("app[web.1]: live")
    assert int(live["id"]) == int(missed[-1]["id"]) + 1


async def test_sse_sends_keep_alive_comments_while_idle() -> None:
    hub = LogHub()
    session = SessionRequest("app-1", tail=True)
    app = session_app(hub, fixed(session), keepalive=0.05)
    async with (
        serving(hub, app) as base,
        httpx.AsyncClient(base_url=base) as client,
        client.stream("GET", "/sessions/s3cret", headers=SSE) as response,
    ):
        comments: list[str] = []
        async for text in response.aiter_lines():
            if text.startswith(":"):
                comments.append(text)
            if len(comments) == 2:
                break
    assert comments == [": connected", ": keep-alive"]


async def test_unknown_secret_is_404_and_a_sync_lookup_works() -> None:
    hub = LogHub()
    hub.append(line("secret stuff"))
    asked: list[str] = []

    def lookup(secret: str) -> SessionRequest | None:
        asked.append(secret)
        return SessionRequest("app-1", lines=10) if secret == "good" else None

    transport = httpx.ASGITransport(app=session_app(hub, lookup))
    async with httpx.AsyncClient(transport=transport, base_url="http://logs") as client:
        missing = await client.get("/sessions/nope")
        found = await client.get("/sessions/good")
    assert missing.status_code == 404
    assert missing.text == "Log session not found or expired.\n"
    assert found.status_code == 200
    assert found.text.endswith("app[web.1]: secret stuff\n")
    assert asked == ["nope", "good"]


async def test_a_session_with_a_bad_filter_is_rejected() -> None:
    hub = LogHub()
    app = session_app(hub, fixed(SessionRequest("app-1", source="syslog")))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://logs") as client:
        response = await client.get("/sessions/s3cret")
    assert response.status_code == 400
    assert "source filter 'syslog'" in response.text
