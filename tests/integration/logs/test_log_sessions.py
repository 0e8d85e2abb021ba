import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from kapal.domain.logline import LogLine
from kapal.logs.archive import LogArchive
from kapal.logs.http import Handler, HttpServer
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
async def serving(hub: LogHub, app: Handler) -> AsyncIterator[str]:
    server = session_server(app, "127.0.0.1", 0)
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(server.serve())
        started = tasks.create_task(server.started.wait())
        await asyncio.wait((task, started), return_when=asyncio.FIRST_COMPLETED)
        assert not task.done(), "session server stopped while starting"
        try:
            yield f"http://127.0.0.1:{server.port}"
        finally:
            hub.close()
            server.close()


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

    async with (
        serving(hub, session_app(hub, lookup)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
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
    async with serving(hub, app) as base, httpx.AsyncClient(base_url=base) as client:
        response = await client.get("/sessions/s3cret")
    assert response.status_code == 400
    assert "source filter 'syslog'" in response.text


async def test_other_paths_methods_and_garbage_are_refused() -> None:
    hub = LogHub()
    session = SessionRequest("app-1", lines=10)
    async with (
        serving(hub, session_app(hub, fixed(session))) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        assert (await client.get("/sessions/s3cret/more")).status_code == 404
        assert (await client.get("/other/s3cret")).status_code == 404
        assert (await client.post("/sessions/s3cret")).status_code == 405
        assert (await client.get("/sessions/s3cr%65t")).status_code == 200
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"NONSENSE\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 400 Bad Request\r\n")
        writer.close()


async def test_close_cuts_a_tail_that_does_not_end_after_the_grace_period() -> None:
    hub = LogHub()
    server = HttpServer(
        session_app(hub, fixed(SessionRequest("app-1", tail=True))), "127.0.0.1", 0, grace=0.1
    )
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(server.serve())
        await server.started.wait()
        async with (
            httpx.AsyncClient() as client,
            client.stream("GET", f"http://127.0.0.1:{server.port}/sessions/s3cret") as response,
        ):
            assert hub.subscriber_count("app-1") == 1
            server.close()  # the hub was not closed: the tail would go on
            await task
            assert hub.subscriber_count("app-1") == 0
            with pytest.raises(httpx.RemoteProtocolError):
                await response.aread()


async def test_a_search_reaches_back_past_memory_and_filters_live_lines(tmp_path: Path) -> None:
    hub = LogHub(history_lines=10, archive=LogArchive(tmp_path))
    for i in range(100):
        text = f"at=error code=H12 n={i}" if i % 25 == 0 else f"at=info n={i}"
        hub.append(LogLine("app-1", "kapal", "router", text, 1_700_000_000.0 + i))
    session = SessionRequest("app-1", lines=1000, tail=True, grep="h12", since=1_700_000_010.0)
    async with (
        serving(hub, session_app(hub, fixed(session))) as base,
        httpx.AsyncClient() as client,
        client.stream("GET", f"{base}/sessions/s3cret") as response,
    ):
        lines = response.aiter_lines()
        backlog = [await anext(lines) for _ in range(3)]
        hub.append(line("GET / code=H12 live"))
        hub.append(line("GET / fine"))
        hub.append(line("GET / code=H12 again"))
        live = [await anext(lines) for _ in range(2)]
    assert [text.rsplit(" ", 1)[1] for text in backlog] == ["n=25", "n=50", "n=75"]
    assert [text.split(": ", 1)[1] for text in live] == [
        "GET / code=H12 live",
        "GET / code=H12 again",
    ]
