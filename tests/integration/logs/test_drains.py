"""Log drains against real receivers on 127.0.0.1: syslog over TCP and TLS, HTTP(S)."""

import asyncio
import base64
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import pytest
from tests.conftest import free_port

from kapal.domain.drains import redact
from kapal.domain.localca import issue_server_certificate, make_authority
from kapal.domain.logline import LogLine
from kapal.logs.drains import DrainSet, DrainSpec

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TOKEN = "d.0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
FAST = (0.01, 0.2)  # back-off for tests: first retry, longest wait
WHEN = datetime(2026, 11, 27, 10, 40, 0, 123456, tzinfo=UTC).timestamp()


# The agent runs on uvloop; asyncio's own loop runs the tests of the other log modules.
@pytest.fixture(
    scope="module",
    params=[("asyncio", {}), ("asyncio", {"use_uvloop": True})],
    ids=["asyncio", "uvloop"],
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def app_line(n: int, app_id: str = "app-1", message: str | None = None) -> LogLine:
    return LogLine(app_id, "app", "web.1", message or f"line {n}", time.time())


def msg(message: bytes) -> str:
    """The MSG part of an RFC 5424 message as drains write it (no structured data)."""
    return message.split(b" ", 6)[6].decode()


def split_frames(data: bytes) -> tuple[list[bytes], bytes]:
    """Octet-counted frames, and what is left of an incomplete one."""
    messages = []
    while True:
        length, space, rest = data.partition(b" ")
        if not space:
            return messages, data
        if not length.isdigit():
            raise ValueError(f"not an octet-counted frame: {data[:40]!r}")
        size = int(length)
        if len(rest) < size:
            return messages, data
        messages.append(rest[:size])
        data = rest[size:]


async def eventually(condition: Callable[[], bool], show: Callable[[], object]) -> None:
    """Wait for `condition`; the test's timeout is the deadline, `show` says what was seen."""
    deadline = asyncio.get_running_loop().time() + 20
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting; saw {show()!r}")
        await asyncio.sleep(0.01)


async def at_least(n: int, count: Callable[[], int]) -> None:
    await eventually(lambda: count() >= n, count)


class Receiver:
    """A server on 127.0.0.1 whose connections are tracked, so it can stop and start again."""

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.tls = tls
        self.connections = 0
        self.errors: list[str] = []
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        self.connections += 1
        try:
            await self.serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except Exception as exc:
            self.errors.append(repr(exc))
        finally:
            del self._handlers[task]
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _stopped(self) -> None:
        if self._handlers:
            await asyncio.wait(self._handlers)
        assert self._server is not None
        await self._server.wait_closed()
        self._server = None

    async def close(self) -> None:
        """Stop at once: every connection closed."""
        if self._server is not None:
            self._server.close()
            for writer in self._handlers.values():
                writer.close()
            await self._stopped()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SyslogReceiver(Receiver):
    """Syslog over TCP (or TLS) with octet-counted frames."""

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(port, tls)
        self.messages: list[bytes] = []

    @property
    def texts(self) -> list[str]:
        return [msg(message) for message in self.messages]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while chunk := await reader.read(65536):
            messages, data = split_frames(data + chunk)
            self.messages += messages
        if data:
            self.errors.append(f"connection ended inside a frame: {data[:40]!r}")

    async def stop(self) -> None:
        """Stop as a well-behaved syslog server does: stop accepting, shut down our side of
        each connection, read until the client ends its side, then close."""
        assert self._server is not None
        self._server.close()
        for writer in self._handlers.values():
            writer.write_eof()
        await self._stopped()


@dataclass
class Request:
    target: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int


class HttpReceiver(Receiver):
    """An HTTP/1.1 log drain endpoint; the first `fail_first` requests get a 500 (with a
    chunked body); with `close_each`, every answer says `Connection: close` and closes."""

    def __init__(
        self,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        fail_first: int = 0,
        close_each: bool = False,
    ) -> None:
        super().__init__(port, tls)
        self.fail_first = fail_first
        self.close_each = close_each
        self.requests: list[Request] = []
        self._idle: set[asyncio.Task[Any]] = set()
        self._stopping = False

    @property
    def accepted(self) -> list[Request]:
        return [request for request in self.requests if request.status == 200]

    @property
    def texts(self) -> list[str]:
        return [msg(m) for request in self.accepted for m in split_frames(request.body)[0]]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        while not self._stopping:
            self._idle.add(task)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            finally:
                self._idle.discard(task)
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ")
            assert method == "POST"
            pairs = (line.split(": ", 1) for line in lines if line)
            headers = {name.lower(): value for name, value in pairs}
            body = await reader.readexactly(int(headers["content-length"]))
            status = 500 if len(self.requests) < self.fail_first else 200
            self.requests.append(Request(target, headers, body, status))
            close = b"Connection: close\r\n" if self.close_each else b""
            if status == 200:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n%b\r\n" % close)
            else:
                writer.write(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                    b"Transfer-Encoding: chunked\r\n%b\r\n5\r\noops\n\r\n0\r\n\r\n" % close
                )
            await writer.drain()
            if self.close_each:
                return

    async def stop(self) -> None:
        """Stop between requests: the one being answered is answered, idle connections end."""
        assert self._server is not None
        self._server.close()
        self._stopping = True
        for task in self._idle:
            self._handlers[task].close()
        await self._stopped()
        self._stopping = False


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # the CA that signed `trusted`
    trusted: ssl.SSLContext  # a server context for localhost
    untrusted: ssl.SSLContext  # the same, signed by a CA nobody trusts


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    root = tmp_path_factory.mktemp("drain-tls")
    now = datetime.now(UTC)
    contexts = []
    for name in ("kapal", "stranger"):
        authority = make_authority(now, f"{name} test CA")
        issued = issue_server_certificate(authority, ["localhost"], now)
        (root / f"{name}-ca.pem").write_text(authority.certificate)
        (root / f"{name}-chain.pem").write_text(issued.certificate)
        (root / f"{name}-key.pem").write_text(issued.private_key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(root / f"{name}-chain.pem", root / f"{name}-key.pem")
        contexts.append(context)
    return Certificates(root / "kapal-ca.pem", contexts[0], contexts[1])


@asynccontextmanager
async def running(
    notice: Callable[[LogLine], None] = lambda line: None, **options: Any
) -> AsyncIterator[DrainSet]:
    drains = DrainSet(notice, backoff=FAST, **options)
    try:
        yield drains
    finally:
        await drains.close(grace=0.5)


def syslog(port: int, drain_id: str = "drain-1", scheme: str = "syslog") -> DrainSpec:
    host = "localhost" if scheme == "syslog+tls" else "127.0.0.1"
    return DrainSpec(drain_id, "app-1", f"{scheme}://{host}:{port}", TOKEN)


def https(port: int, drain_id: str = "drain-1", scheme: str = "http") -> DrainSpec:
    host = "localhost" if scheme == "https" else "127.0.0.1"
    url = f"{scheme}://user:s3cret@{host}:{port}/logs?app=1"
    return DrainSpec(drain_id, "app-1", url, TOKEN)


def make_receiver(kind: str, port: int = 0) -> SyslogReceiver | HttpReceiver:
    return SyslogReceiver(port) if kind == "syslog" else HttpReceiver(port)


def spec_for(kind: str, port: int) -> DrainSpec:
    return syslog(port) if kind == "syslog" else https(port)


# delivery


async def test_syslog_lines_arrive_once_in_order_as_rfc5424() -> None:
    async with SyslogReceiver() as receiver, running() as drains:
        drains.update([syslog(receiver.port)])
        drains.offer(LogLine("app-1", "kapal", "router", "at=info method=GET", WHEN))
        drains.offer(LogLine("app-1", "kapal", "web.1", "State changed from starting to up", 1.0))
        for n in range(300):
            drains.offer(app_line(n))
        await eventually(lambda: len(receiver.messages) >= 302, lambda: receiver.texts)
        router = f"<158>1 2026-11-27T10:40:00.123456+00:00 {TOKEN} kapal router - at=info"
        assert receiver.messages[0] == f"{router} method=GET".encode()
        assert receiver.messages[1].startswith(b"<134>1 1970-01-01T00:00:01.000000+00:00 ")
        assert receiver.messages[2].startswith(b"<190>1 ")
        assert receiver.texts[2:] == [f"line {n}" for n in range(300)]
        assert drains.stats() == {"drain-1": {"sent": 302, "dropped": 0, "queued": 0}}
        assert receiver.connections == 1
        assert receiver.errors == []


async def test_odd_messages_keep_their_frames() -> None:
    odd = [
        "two\nlines",
        "cr\r\nlf",
        "nul\x00 bell\x07 esc\x1b[0m",
        "lone \udcff",
        "12 <x>",
        "ü" * 3000,
    ]
    async with SyslogReceiver() as receiver, running() as drains:
        drains.update([syslog(receiver.port)])
        for n, text in enumerate(odd):
            drains.offer(app_line(n, message=text))
        await eventually(lambda: len(receiver.messages) >= len(odd), lambda: receiver.texts)
        expected = [text.encode("utf-8", "replace").decode() for text in odd]
        assert receiver.texts == expected
        assert receiver.errors == []


async def test_lines_of_other_apps_do_not_reach_the_drain() -> None:
    async with SyslogReceiver() as receiver, running() as drains:
        drains.update([syslog(receiver.port)])
        drains.offer(app_line(1, app_id="app-2"))
        drains.offer(app_line(2))
        await eventually(lambda: len(receiver.messages) >= 1, lambda: receiver.texts)
        drains.offer(app_line(3, app_id="app-2"))
        drains.offer(app_line(4))
        await eventually(lambda: len(receiver.messages) >= 2, lambda: receiver.texts)
        assert receiver.texts == ["line 2", "line 4"]


async def test_a_syslog_receiver_that_is_down_gets_everything_once_it_is_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kapal.logs.drains")
    port = free_port()
    async with running() as drains:
        drains.update([syslog(port)])
        for n in range(200):
            drains.offer(app_line(n))
        await eventually(lambda: len(retries(caplog)) >= 3, lambda: caplog.text)
        assert drains.stats()["drain-1"] == {"sent": 0, "dropped": 0, "queued": 200}
        async with SyslogReceiver(port) as receiver:
            await eventually(lambda: len(receiver.messages) >= 200, lambda: receiver.texts)
            assert receiver.texts == [f"line {n}" for n in range(200)]
    # One warning for the whole outage, then quiet retries.
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert f"drain drain-1 to syslog://127.0.0.1:{port} failing" in warnings[0].getMessage()
    assert any("delivers again" in r.getMessage() for r in caplog.records)


async def logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    await eventually(lambda: text in caplog.text, lambda: caplog.text)


def retries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "still failing" in r.getMessage()]


async def restarts_while_offering(
    drains: DrainSet, receiver: SyslogReceiver | HttpReceiver, restarts: int = 2
) -> int:
    """Offer lines steadily while `receiver` restarts, each time once 100 more lines arrived;
    how many lines were offered."""
    stop = asyncio.Event()

    async def offer() -> int:
        n = 0
        while not stop.is_set():
            drains.offer(app_line(n))
            n += 1
            await asyncio.sleep(0.002)
        return n

    async with asyncio.TaskGroup() as tasks:
        offering = tasks.create_task(offer())
        for _ in range(restarts):
            await at_least(len(receiver.texts) + 100, lambda: len(receiver.texts))
            await receiver.stop()
            await asyncio.sleep(0.1)  # lines pile up meanwhile, and connecting is refused
            await receiver.start()
        await at_least(len(receiver.texts) + 100, lambda: len(receiver.texts))
        stop.set()
    return offering.result()


async def test_a_syslog_receiver_restart_loses_and_repeats_nothing() -> None:
    async with SyslogReceiver() as receiver, running() as drains:
        drains.update([syslog(receiver.port)])
        offered = await restarts_while_offering(drains, receiver)
        await at_least(offered, lambda: len(receiver.messages))
        assert receiver.texts == [f"line {n}" for n in range(offered)]
        assert receiver.connections == 3
        assert receiver.errors == []
        assert drains.stats()["drain-1"] == {"sent": offered, "dropped": 0, "queued": 0}


async def test_one_failing_drain_does_not_hold_up_another() -> None:
    async with SyslogReceiver() as receiver, running() as drains:
        drains.update([syslog(free_port(), "down"), syslog(receiver.port, "up")])
        for n in range(100):
            drains.offer(app_line(n))
        await eventually(lambda: len(receiver.messages) >= 100, lambda: receiver.texts)
        assert receiver.texts == [f"line {n}" for n in range(100)]
        stats = drains.stats()
        assert stats["up"] == {"sent": 100, "dropped": 0, "queued": 0}
        assert stats["down"] == {"sent": 0, "dropped": 0, "queued": 100}


# HTTP(S)


async def test_http_batches_are_logplex_requests() -> None:
    async with HttpReceiver() as receiver, running(buffer=5000) as drains:
        drains.update([https(receiver.port)])
        for n in range(50):
            drains.offer(app_line(n))
        await eventually(lambda: len(receiver.texts) >= 50, lambda: receiver.texts)
        for n in range(50, 3000):  # more than one batch's 100 KB
            drains.offer(app_line(n, message=f"line {n} " + "x" * 100))
        await eventually(lambda: len(receiver.texts) >= 3000, lambda: len(receiver.texts))
        assert [text.split(" x")[0] for text in receiver.texts] == [
            f"line {n}" for n in range(3000)
        ]
        auth = "Basic " + base64.b64encode(b"user:s3cret").decode()
        for request in receiver.requests:
            frames, rest = split_frames(request.body)
            assert rest == b""
            assert request.target == "/logs?app=1"
            assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
            assert request.headers["content-type"] == "application/logplex-1"
            assert request.headers["logplex-msg-count"] == str(len(frames))
            assert request.headers["logplex-drain-token"] == TOKEN
            assert request.headers["user-agent"] == "Kapal-Logplex/1"
            assert request.headers["authorization"] == auth
            assert len(request.body) <= 102_400
            assert (
                frames[0].startswith(b"<190>1 ") and f" {TOKEN} app web.1 - ".encode() in frames[0]
            )
        frame_ids = [request.headers["logplex-frame-id"] for request in receiver.requests]
        assert len(set(frame_ids)) == len(frame_ids) >= 3
        assert receiver.connections == 1  # one kept-alive connection
        assert receiver.errors == []


async def test_a_failed_batch_is_retried_whole_with_the_same_frame_id() -> None:
    async with HttpReceiver(fail_first=3) as receiver, running() as drains:
        drains.update([https(receiver.port)])
        for n in range(20):
            drains.offer(app_line(n))
        await eventually(lambda: len(receiver.texts) >= 20, lambda: receiver.requests)
        for n in range(20, 40):
            drains.offer(app_line(n))
        await eventually(lambda: len(receiver.texts) >= 40, lambda: receiver.requests)
        assert receiver.texts == [f"line {n}" for n in range(40)]
        first, *retried = receiver.requests[:4]
        assert [request.status for request in receiver.requests[:4]] == [500, 500, 500, 200]
        for request in retried:
            assert request.headers["logplex-frame-id"] == first.headers["logplex-frame-id"]
            assert request.body == first.body
        later = receiver.requests[4:]
        assert later and all(
            r.headers["logplex-frame-id"] != first.headers["logplex-frame-id"] for r in later
        )
        assert drains.stats()["drain-1"] == {"sent": 40, "dropped": 0, "queued": 0}


async def test_an_http_receiver_restart_between_requests_loses_and_repeats_nothing() -> None:
    async with HttpReceiver() as receiver, running() as drains:
        drains.update([https(receiver.port)])
        offered = await restarts_while_offering(drains, receiver)
        await at_least(offered, lambda: len(receiver.texts))
        assert receiver.texts == [f"line {n}" for n in range(offered)]
        frame_ids = [request.headers["logplex-frame-id"] for request in receiver.accepted]
        assert len(set(frame_ids)) == len(frame_ids)
        assert receiver.connections >= 3
        assert receiver.errors == []


async def test_a_receiver_that_closes_after_each_answer() -> None:
    async with HttpReceiver(close_each=True) as receiver, running() as drains:
        drains.update([https(receiver.port)])
        for burst in range(3):
            for n in range(burst * 10, burst * 10 + 10):
                drains.offer(app_line(n))
            await at_least(burst * 10 + 10, lambda: len(receiver.texts))
        assert receiver.texts == [f"line {n}" for n in range(30)]
        assert receiver.connections == len(receiver.requests)
        assert all(request.status == 200 for request in receiver.requests)


# overflow


@pytest.mark.parametrize("kind", ["syslog", "http"])
async def test_a_full_buffer_drops_lines_and_says_so_where_they_were(kind: str) -> None:
    port = free_port()
    notices: list[LogLine] = []
    offering = False

    def notice(line: LogLine) -> None:
        assert not offering, "the notice callback ran inside offer()"
        notices.append(line)
        drains.offer(line)  # as the hub does with a line appended to the app's stream

    async with running(notice) as drains:
        drains.update([spec_for(kind, port)])
        for n in range(1024 + 500):
            offering = True
            drains.offer(app_line(n))
            offering = False
        assert drains.stats()["drain-1"] == {"sent": 0, "dropped": 500, "queued": 1024}
        async with make_receiver(kind, port) as receiver:
            await eventually(lambda: len(receiver.texts) >= 1025, lambda: len(receiver.texts))
            for n in range(2000, 2010):
                offering = True
                drains.offer(app_line(n))
                offering = False
            await eventually(lambda: len(receiver.texts) >= 1035, lambda: len(receiver.texts))
            texts = receiver.texts
    assert texts[:1024] == [f"line {n}" for n in range(1024)]
    assert texts[1024].startswith("Error L10 (output buffer overflow): 500 messages dropped since ")
    assert texts[1025:] == [f"line {n}" for n in range(2000, 2010)]
    [l10] = notices
    assert (l10.app_id, l10.source, l10.dyno, l10.message) == (
        "app-1",
        "kapal",
        "logplex",
        texts[1024],
    )


async def test_the_buffer_size_is_configurable() -> None:
    port = free_port()
    async with running(buffer=10) as drains:
        drains.update([syslog(port)])
        for n in range(15):
            drains.offer(app_line(n))
        assert drains.stats()["drain-1"] == {"sent": 0, "dropped": 5, "queued": 10}


# TLS


async def test_syslog_over_tls_verified_with_the_extra_ca(certificates: Certificates) -> None:
    async with (
        SyslogReceiver(tls=certificates.trusted) as receiver,
        running(ca_file=certificates.ca_file) as drains,
    ):
        drains.update([syslog(receiver.port, scheme="syslog+tls")])
        for n in range(100):
            drains.offer(app_line(n))
        await eventually(lambda: len(receiver.messages) >= 100, lambda: receiver.texts)
        assert receiver.texts == [f"line {n}" for n in range(100)]
        assert receiver.errors == []


async def test_https_verified_with_the_extra_ca(certificates: Certificates) -> None:
    async with (
        HttpReceiver(tls=certificates.trusted, fail_first=1) as receiver,
        running(ca_file=certificates.ca_file) as drains,
    ):
        drains.update([https(receiver.port, scheme="https")])
        for n in range(100):
            drains.offer(app_line(n))
        await eventually(lambda: len(receiver.texts) >= 100, lambda: receiver.texts)
        assert receiver.texts == [f"line {n}" for n in range(100)]
        assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"


async def test_an_untrusted_certificate_is_reported_once_as_l14_and_retried(
    certificates: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kapal.logs.drains")
    notices: list[LogLine] = []
    async with (
        SyslogReceiver(tls=certificates.untrusted) as receiver,
        running(notices.append, ca_file=certificates.ca_file) as drains,
    ):
        drains.update([syslog(receiver.port, scheme="syslog+tls")])
        for n in range(10):
            drains.offer(app_line(n))
        await eventually(lambda: len(retries(caplog)) >= 5, lambda: caplog.text)
        assert receiver.messages == []
        assert drains.stats()["drain-1"] == {"sent": 0, "dropped": 0, "queued": 10}
    [l14] = notices
    assert (l14.app_id, l14.source, l14.dyno) == ("app-1", "kapal", "logplex")
    # OpenSSL's words for it vary: "self-signed certificate in certificate chain", "unable
    # to get local issuer certificate".
    assert re.fullmatch(
        r'Error L14 \(certificate validation error\): error="[^"]*certificate[^"]*" '
        rf'uri="syslog\+tls://localhost:{receiver.port}"',
        l14.message,
    ), l14.message


# bad drains, and the set's life


async def test_unreachable_drains_retry_quietly_and_never_show_passwords(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kapal.logs.drains")
    specs = [
        DrainSpec("nowhere", "app-1", "https://user:hunter2@nonexistent.invalid/logs", TOKEN),
        DrainSpec("refused", "app-1", f"https://user:hunter2@127.0.0.1:{free_port()}/", TOKEN),
        DrainSpec("unknown", "app-1", "syslog://nonexistent.invalid:514", TOKEN),
    ]
    async with running() as drains:
        drains.update(specs)
        for n in range(10):
            drains.offer(app_line(n))
        for spec in specs:  # each warned once, then retried quietly
            await logged(caplog, f"drain {spec.drain_id} to {redact(spec.url)} still failing")
        for n in range(10, 20):
            drains.offer(app_line(n))
        assert {stats["queued"] for stats in drains.stats().values()} == {20}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "failing" in w]) == 3, warnings
    assert "hunter2" not in caplog.text
    assert "https://user:***@nonexistent.invalid/logs" in caplog.text


async def test_update_starts_new_drains_stops_removed_ones_and_keeps_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with SyslogReceiver() as one, SyslogReceiver() as two, running() as drains:
        a, b = syslog(one.port, "a"), syslog(two.port, "b")
        drains.update([a, b])
        for n in range(3):
            drains.offer(app_line(n))
        await eventually(lambda: len(one.messages) == len(two.messages) == 3, lambda: 0)

        drains.update([a])
        assert set(drains.stats()) == {"a"}
        drains.offer(app_line(3))
        await eventually(lambda: len(one.messages) == 4, lambda: one.texts)
        assert drains.stats()["a"]["sent"] == 4  # the same drain, still running
        assert len(two.messages) == 3

        drains.update([], app_id="app-2")  # another app's drains: this one's stay
        drains.update([a], app_id="app-1")
        assert drains.stats()["a"]["sent"] == 4
        with pytest.raises(ValueError, match="not of app"):
            drains.update([a], app_id="app-2")

        drains.update([syslog(two.port, "a")])  # a new URL: a new drain
        assert drains.stats()["a"]["sent"] == 0
        drains.offer(app_line(4))
        await eventually(lambda: len(two.messages) == 4, lambda: two.texts)
        assert two.texts == ["line 0", "line 1", "line 2", "line 4"]

        caplog.set_level(logging.WARNING, logger="kapal.logs.drains")
        drains.update([DrainSpec("bad", "app-1", "ftp://user:pw@x/", TOKEN)])
        assert drains.stats() == {}
        assert "drain bad not started" in caplog.text and ":pw@" not in caplog.text
        drains.offer(app_line(5))  # no drain now: nothing happens


@pytest.mark.parametrize("kind", ["syslog", "http"])
async def test_close_delivers_what_is_queued_first(kind: str) -> None:
    async with make_receiver(kind) as receiver:
        drains = DrainSet(lambda line: None, backoff=FAST)
        drains.update([spec_for(kind, receiver.port)])
        for n in range(500):
            drains.offer(app_line(n))
        await drains.close(grace=5)
        assert drains.stats() == {"drain-1": {"sent": 500, "dropped": 0, "queued": 0}}
        # Syslog has no answers: the lines are out once our side closed; the receiver reads on.
        await eventually(lambda: len(receiver.texts) >= 500, lambda: len(receiver.texts))
        assert receiver.texts == [f"line {n}" for n in range(500)]


async def test_close_gives_up_after_the_grace_when_a_receiver_is_down() -> None:
    drains = DrainSet(lambda line: None, backoff=FAST)
    drains.update([syslog(free_port()), https(free_port(), "drain-2")])
    drains.offer(app_line(1))
    await drains.close(grace=0.2)
    final = {"sent": 0, "dropped": 0, "queued": 1}
    assert drains.stats() == {"drain-1": final, "drain-2": final}
    drains.offer(app_line(2))  # closed: taken by no drain
    assert drains.stats() == {"drain-1": final, "drain-2": final}
    drains.update([syslog(free_port(), "drain-3")])  # closed: nothing starts
    assert drains.stats() == {}


async def test_a_failing_notice_callback_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def notice(line: LogLine) -> None:
        raise RuntimeError("the hub is gone")

    port = free_port()
    async with running(notice, buffer=2) as drains:
        drains.update([syslog(port)])
        for n in range(5):
            drains.offer(app_line(n))
        async with SyslogReceiver(port) as receiver:
            await eventually(lambda: len(receiver.messages) >= 3, lambda: receiver.texts)
            await logged(caplog, "the notice callback failed")
        assert receiver.texts[:2] == ["line 0", "line 1"]
        assert receiver.texts[2].startswith("Error L10 (output buffer overflow): 3 messages")
