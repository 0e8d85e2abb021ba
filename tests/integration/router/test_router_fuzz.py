"""Fuzzing the request path: random and mutated request bytes go to a live router (real
sockets, a fake dyno behind it). Whatever arrives, the router answers with well-formed HTTP
responses or closes the connection (or waits for the rest of a request), never logs a bug of
its own, and serves a good request right afterwards. The same for what a dyno answers: the
client gets the router's error page, or the response with a well-formed head (its body cut
short by a close when the dyno's was)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.integration.router.router_harness import FakeDyno, ListSink, app

from kapal.router import Router, RouterConfig, RouteTable, UpDyno

pytestmark = pytest.mark.timeout(240)

QUIET = 0.05  # seconds without a byte after which an answer is taken as whole
DEADLINE = 5.0  # for one example's answers (H12 is set to 1 s below)
_STATUS = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) [^\r\n]*\r\n")
_HEADER = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]*[^\r\n]*\r\n")


class RawDyno:
    """The app `raw`: reads a request head, sends `answer` as it is, and closes."""

    def __init__(self) -> None:
        self.answer = b""
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


class LiveRouter:
    """A router and fake dynos on an event loop of their own, in a thread, so that plain
    blocking sockets (and hypothesis) can drive it: app `demo` on a FakeDyno, app `raw` on a
    RawDyno."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="router", daemon=True)
        self.sink = ListSink()
        self.port = 0
        self.router: Router | None = None
        self.web: FakeDyno | None = None
        self.raw = RawDyno()

    def __enter__(self) -> LiveRouter:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _start(self) -> None:
        self.web = await FakeDyno().start()
        await self.raw.start()
        raw = app("raw", "app-2", up=(UpDyno("web.1", self.raw.port),))
        table = RouteTable.of(app(up=(self.web.up(),)), raw)
        config = RouterConfig(port=0, request_timeout=1.0, boot_timeout=1.0)
        self.router = Router(config, lambda: table, self.sink)
        await self.router.start()
        self.port = self.router.port

    async def _stop(self) -> None:
        assert self.router is not None and self.web is not None
        await self.router.close(grace=1.0)
        await self.web.close()
        await self.raw.close()

    def connections(self) -> int:
        async def count() -> int:
            assert self.router is not None
            return len(self.router.clients) + len(self.router.parked)

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(10)


class Bugs(logging.Handler):
    """Errors the router logs about itself (a failed task, a callback that raised)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@pytest.fixture(scope="module")
def live() -> Iterator[LiveRouter]:
    with LiveRouter() as router:
        yield router


@pytest.fixture(scope="module")
def bugs() -> Iterator[Bugs]:
    handler = Bugs()
    logger = logging.getLogger("kapal.router")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def check_responses(data: bytes, *, eof: bool, head_only: bool, cut_short: bool = False) -> bool:
    """Whether `data` is whole responses (True), or whole ones then the start of another
    (False); AssertionError when it is not HTTP. A 101 ends the HTTP part. With `cut_short`,
    a body may end early with the connection (the router passes on what a dyno sent, then
    closes when the rest never comes)."""
    pos = 0
    while pos < len(data):
        status_line = _STATUS.match(data, pos)
        if status_line is None:
            prefix = data[pos : pos + 12]
            assert b"HTTP/1.1 ".startswith(prefix[:9]) and not eof, f"not a response: {data!r}"
            return False
        status = int(status_line.group(1))
        pos = status_line.end()
        headers: dict[bytes, bytes] = {}
        while not data.startswith(b"\r\n", pos):
            header = _HEADER.match(data, pos)
            if header is None:
                assert not eof and b"\r\n" not in data[pos:], f"bad header line: {data[pos:]!r}"
                return False
            name, _, value = header.group(0).partition(b":")
            headers[name.lower()] = value.strip()
            pos = header.end()
        pos += 2
        if status == 101:
            return True
        if 100 <= status < 200 or status in (204, 304) or head_only:
            continue
        if headers.get(b"transfer-encoding", b"").lower().endswith(b"chunked"):
            end = _chunked_end(data, pos)
            if end is None:
                assert cut_short or not eof, f"a chunked body cut short: {data!r}"
                return eof
            pos = end
        elif b"content-length" in headers:
            pos += int(headers[b"content-length"])
            if pos > len(data):
                assert cut_short or not eof, f"a body cut short: {data!r}"
                return eof
        else:
            return eof  # the body ends with the connection
    return True


def _chunked_end(data: bytes, pos: int) -> int | None:
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(data[pos:line_end].split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", pos - 2)
            return None if trailer_end < 0 else trailer_end + 4
        pos += size + 2
        if pos > len(data):
            return None


def exchange(
    port: int, request: bytes, *, cut_short: bool = False, answer_due: bool = False
) -> tuple[bytes, bool]:
    """Send `request`, read until the router closes, or is quiet after whole responses. With
    `answer_due` (a whole request was sent), silence before the first byte is not an end."""
    # A HEAD request's answer has no body, whatever its Content-Length says.
    # (The router answers a malformed request that starts with HEAD as HEAD too.)
    head_only = re.search(rb"(?:\A|[\r\n])HEAD", request) is not None
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        # It may be closed already, after an answer to its start: that answer is read below.
        with contextlib.suppress(OSError):
            sock.sendall(request)
        sock.settimeout(QUIET)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if answer_due and not received:
                    # A router under load may take longer than QUIET to begin its answer.
                    continue
                if check_responses(received, eof=False, head_only=head_only, cut_short=cut_short):
                    return received, False
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                check_responses(received, eof=True, head_only=head_only, cut_short=cut_short)
                return received, True
            received += data
    raise AssertionError(f"an answer was not finished in {DEADLINE:g} s: {received!r}")


def serves(port: int) -> None:
    good = b"GET /echo HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n"
    answer, _ = exchange(port, good, answer_due=True)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer


def test_an_answer_that_is_due_is_waited_for_however_late_it_begins() -> None:
    # Under full-suite load the router once took longer than QUIET to begin answering
    # `serves()`, and the empty read was taken for a whole answer of no responses.
    late = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer_late() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                time.sleep(QUIET * 6)
                conn.sendall(late)

        thread = threading.Thread(target=answer_late, name="late-answer", daemon=True)
        thread.start()
        request = b"GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n"
        answer, closed = exchange(server.getsockname()[1], request, answer_due=True)
        thread.join(DEADLINE)
    assert (answer, closed) == (late, True)


def mostly(
    usual: st.SearchStrategy[bytes], odd: st.SearchStrategy[bytes]
) -> st.SearchStrategy[bytes]:
    """`usual`, and one time in ten `odd`: most requests get far enough to reach the dyno."""
    return st.integers(0, 9).flatmap(lambda n: odd if n == 0 else usual)


EOL = mostly(st.just(b"\r\n"), st.sampled_from([b"\n", b"\r", b"", b"\r\r\n"]))
METHODS = mostly(
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"]),
    st.sampled_from([b"CONNECT", b"TRACE", b"PRI", b"get", b"G\x00T"]) | st.binary(max_size=8),
)
TARGETS = mostly(
    st.sampled_from([b"/", b"/echo", b"/echo?q=1&r", b"http://demo.localhost/echo", b"//x"]),
    st.sampled_from([b"*", b"/%00", b"", b"/a b", b"/\xff"]) | st.binary(max_size=16),
)
VERSIONS = mostly(
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]),
    st.sampled_from([b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.x", b"", b"http/1.1"]),
)
HOSTS = mostly(
    st.sampled_from([b"demo.localhost", b"DEMO.localhost:80", b"demo.localhost."]),
    st.sampled_from([b"nope.localhost", b"", b"demo", b"\xff"]) | st.binary(max_size=12),
)
FRAMING = st.one_of(
    st.tuples(
        st.just(b"Content-Length"),
        mostly(
            st.sampled_from([b"0", b"5", b"64"]),
            st.sampled_from([b"-1", b"99999999999999999999", b"abc", b" 5", b"5, 5"]),
        ),
    ),
    st.tuples(
        st.just(b"Transfer-Encoding"),
        mostly(st.just(b"chunked"), st.sampled_from([b"gzip", b"chunked, gzip", b"gzip, chunked"])),
    ),
)
HEADERS = mostly(
    st.one_of(
        st.tuples(
            st.sampled_from([b"Connection", b"Expect", b"Upgrade", b"X-Request-Id", b"Accept"]),
            st.sampled_from([b"close", b"keep-alive", b"100-continue", b"websocket", b"Host"]),
        ),
        st.tuples(
            st.from_regex(rb"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z"),
            st.from_regex(rb"\A[ -~]{0,40}\Z"),
        ),
    ).map(lambda pair: pair[0] + b": " + pair[1]),
    st.tuples(st.binary(max_size=12), st.binary(max_size=24)).map(lambda p: p[0] + b": " + p[1]),
)
BODIES = mostly(
    st.sampled_from([b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n"]),
    st.sampled_from([b"zz\r\n", b"5\r\nhel"]) | st.binary(max_size=64),
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    eol = draw(EOL)
    lines = [draw(METHODS) + b" " + draw(TARGETS) + b" " + draw(VERSIONS)]
    if draw(st.integers(0, 9)):
        lines.append(b"Host: " + draw(HOSTS))
    lines += [name + b": " + value for name, value in draw(st.lists(FRAMING, max_size=2))]
    lines += draw(st.lists(HEADERS, max_size=4))
    return eol.join(lines) + eol + eol + draw(BODIES)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A request with a few bytes changed, inserted or removed."""
    data = bytearray(draw(requests()))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "insert", "delete"]))
        if how == "flip":
            data[at] = draw(st.integers(0, 255))
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[at]
    return bytes(data)


INPUTS = st.one_of(
    requests(),
    mutated(),
    st.lists(requests(), min_size=2, max_size=3).map(b"".join),
    st.binary(max_size=300),
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(INPUTS)
def test_any_request_bytes_get_http_or_a_close_and_the_router_serves_on(
    live: LiveRouter, bugs: Bugs, request: bytes
) -> None:
    answer, closed = exchange(live.port, request)
    event(f"{answer[:12]!r} {'closed' if closed else 'left open'}")
    serves(live.port)
    assert bugs.records == []


def test_after_the_fuzzing_no_connection_or_waiting_request_is_left(live: LiveRouter) -> None:
    deadline = time.monotonic() + 10
    while live.connections() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.connections() == 0


STATUS_LINES = mostly(
    st.sampled_from(
        [b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 204 No"]
    ),
    st.sampled_from(
        [b"HTTP/1.1 100 Continue", b"HTTP/1.1 101 Switching", b"HTTP/1.1 999 Odd", b"HTTP/2 200"]
    )
    | st.binary(max_size=20),
)
RESPONSE_HEADERS = st.one_of(
    st.sampled_from(
        [
            b"Content-Length: 5",
            b"Content-Length: 0",
            b"Content-Length: 100",
            b"Content-Length: -1",
            b"Content-Length: 5\r\nContent-Length: 6",
            b"Transfer-Encoding: chunked",
            b"Transfer-Encoding: gzip",
            b"Connection: close",
            b"Connection: keep-alive",
            b"Set-Cookie: a=b",
        ]
    ),
    HEADERS,
)
RESPONSE_BODIES = mostly(
    st.sampled_from([b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"5\r\nhel", b"zz\r\n"]),
    st.binary(max_size=200),
)


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    eol = draw(EOL)
    lines = [draw(STATUS_LINES), *draw(st.lists(RESPONSE_HEADERS, max_size=4))]
    answer = eol.join(lines) + eol + eol + draw(RESPONSE_BODIES)
    if draw(st.integers(0, 4)) == 0:  # cut anywhere
        answer = answer[: draw(st.integers(0, len(answer)))]
    return answer


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.one_of(responses(), st.binary(max_size=200)))
def test_any_dyno_answer_reaches_the_client_well_formed_or_as_an_error(
    live: LiveRouter, bugs: Bugs, answer: bytes
) -> None:
    live.raw.answer = answer
    request = b"GET /x HTTP/1.1\r\nHost: raw.localhost\r\n\r\n"
    received, closed = exchange(live.port, request, cut_short=True, answer_due=True)
    event(f"{received[:12]!r} {'closed' if closed else 'left open'}")
    assert received.startswith(b"HTTP/1.1 "), received  # never nothing, never a bare close
    serves(live.port)
    assert bugs.records == []
