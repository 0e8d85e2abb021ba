"""Log session URLs: `GET /sessions/{secret}` streams an app's lines from the hub.

Plain text (one formatted line per line) by default; Server-Sent Events when the client
asks for `text/event-stream`, which is how Heroku's CLI reads `logplex_url`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from kapal.logs.archive import Query
from kapal.logs.filters import LogFilter
from kapal.logs.http import Handler, HttpServer, Request, Response, text
from kapal.logs.hub import LogHub
from kapal.logs.sse import sse_comment, sse_event
from kapal.logs.subscription import Entry, Subscription

KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """What a log session asked for (a row of log_sessions, found by its secret)."""

    app_id: str
    dyno: str | None = None  # `web.1`, or a process type such as `web` or `router`
    source: str | None = None  # `app` or `kapal`
    lines: int = 100
    tail: bool = False
    grep: str | None = None  # only lines whose message holds this, whatever its case
    since: float | None = None  # unix seconds: only lines written since


Lookup = Callable[[str], Awaitable[SessionRequest | None] | SessionRequest | None]


async def _resolve(lookup: Lookup, secret: str) -> SessionRequest | None:
    is_async = inspect.iscoroutinefunction(lookup)
    if is_async:
        found = lookup(secret)
    else:
        # A plain function may block on the store: keep it off the event loop.
        found = await asyncio.to_thread(lookup, secret)
    if inspect.isawaitable(found):
        found = await found
    if found is not None and not isinstance(found, SessionRequest):
        raise TypeError(f"log session lookup returned {type(found).__name__}")
    return found


BATCH = 1000  # lines sent in one chunk of the response at most


async def _batches(
    backlog: list[Entry],
    subscription: Subscription | None,
    last_seq: int,
    idle: float | None,
) -> AsyncIterator[list[Entry] | None]:
    """The backlog, then live entries as they come, a batch at a time (one write each, not
    one per line); None after `idle` seconds without one (keep-alive)."""
    for start in range(0, len(backlog), BATCH):
        yield backlog[start : start + BATCH]
    if subscription is None:
        return
    while True:
        try:
            async with asyncio.timeout(idle):
                batch = await subscription.batch(BATCH)
        except TimeoutError:
            yield None
            continue
        if not batch:
            return  # the subscription ended
        # Skip what the backlog already had (lines appended while it was read).
        fresh = [entry for entry in batch if entry.seq is None or entry.seq > last_seq]
        if fresh:
            yield fresh


async def _plain(batches: AsyncIterator[list[Entry] | None]) -> AsyncGenerator[str, None]:
    async for batch in batches:
        if batch:
            yield "".join(f"{entry.text}\n" for entry in batch)


async def _events(batches: AsyncIterator[list[Entry] | None]) -> AsyncGenerator[str, None]:
    # A first comment lets EventSource clients see the stream open before any line arrives.
    yield sse_comment("connected")
    async for batch in batches:
        if batch is None:
            yield sse_comment("keep-alive")
        else:
            yield "".join(sse_event(entry.text, entry.seq) for entry in batch)


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "").strip()
    return int(raw) if raw.isdigit() else None


def _stream(
    body: AsyncGenerator[str, None], subscription: Subscription | None, media_type: str
) -> Response:
    """Leaves the hub however the response ends: finished, client gone, or cancelled."""
    return Response(
        200,
        f"{media_type}; charset=utf-8",
        body,
        {"cache-control": "no-cache", "x-accel-buffering": "no"},
        subscription.close if subscription is not None else lambda: None,
    )


def session_app(hub: LogHub, lookup: Lookup, keepalive: float = KEEPALIVE_SECONDS) -> Handler:
    """What the agent answers on settings.logs_port."""

    async def stream(secret: str, request: Request) -> Response:
        session = await _resolve(lookup, secret)
        if session is None:
            return text(404, "Log session not found or expired.\n")
        try:
            log_filter = LogFilter(session.dyno, session.source, session.grep)
        except ValueError as exc:
            return text(400, f"{exc}\n")
        sse = "text/event-stream" in request.headers.get("accept", "")
        resume_after = _last_event_id(request) if sse else None
        if resume_after is None:
            query = Query(log_filter, max(0, session.lines), since=session.since)
        else:
            # A reconnecting client gets everything it missed that the history still holds.
            query = Query(log_filter, hub.history_lines, after=resume_after)
        # Subscribe before reading history: a line appended meanwhile is in both, and the
        # live part skips seqs the backlog already had, so none falls in a gap.
        subscription = hub.subscribe(session.app_id, log_filter) if session.tail else None
        try:
            backlog = await hub.search(session.app_id, query)
        except BaseException:
            if subscription is not None:
                subscription.close()
            raise
        last_seq = max((e.seq for e in backlog if e.seq is not None), default=resume_after or 0)
        if sse:
            batches = _batches(backlog, subscription, last_seq, keepalive)
            return _stream(_events(batches), subscription, "text/event-stream")
        batches = _batches(backlog, subscription, last_seq, None)
        return _stream(_plain(batches), subscription, "text/plain")

    async def handle(request: Request) -> Response:
        prefix, _, secret = request.path.partition("/sessions/")
        if prefix or not secret or "/" in secret:
            return text(404, "Not Found\n")
        if request.method != "GET":
            return text(405, "Method Not Allowed\n")
        return await stream(secret, request)

    return handle


def session_server(app: Handler, host: str, port: int) -> HttpServer:
    """The server for session_app: `await server.serve()`; stop with close()."""
    return HttpServer(app, host, port)
