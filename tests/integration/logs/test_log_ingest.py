import asyncio
import contextlib
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kapal.domain.logline import LogLine
from kapal.logs.hub import LogHub
from kapal.logs.ingest import LogIngest, decode_datagram
from kapal.logs.sender import MAX_DATAGRAM, LogSender

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sock_path() -> Iterator[Path]:
    # Unix socket paths are limited to ~108 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="kapal-logs-") as tmp:
        yield Path(tmp) / "run" / "logs.sock"


def send_raw(path: Path, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        for data in datagrams:
            sock.sendto(data, str(path))


async def test_lines_from_a_log_sender_reach_the_hub(sock_path: Path) -> None:
    hub = LogHub()
    ingest = LogIngest(hub, sock_path)
    await ingest.start()
    sender = LogSender(sock_path)
    try:
        with hub.subscribe("app-1") as sub:
            sender.send(LogLine("app-1", "kapal", "router", "at=info method=GET", 1.5))
            sender.send(LogLine("app-1", "app", "api", "Release v2 created by user x@y", 2.5))
            got = [await anext(sub), await anext(sub)]
        assert [entry.line.dyno for entry in got] == ["router", "api"]
        assert got[1].line.format() == (
            "1970-01-01T00:00:02.500000+00:00 app[api]: Release v2 created by user x@y"
        )
        assert ingest.received == 2
        assert sender.dropped == 0
        # Only Kapal's own user may write lines into apps' streams.
        assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
    finally:
        sender.close()
        ingest.close()
    assert not sock_path.exists()


async def test_a_batching_sender_sends_a_turn_of_the_loop_as_one_datagram(
    sock_path: Path,
) -> None:
    hub = LogHub()
    ingest = LogIngest(hub, sock_path)
    await ingest.start()
    sender = LogSender(sock_path, asyncio.get_running_loop())
    try:
        with hub.subscribe("app-1") as sub:
            for n in range(3):
                sender.send(LogLine("app-1", "kapal", "router", f'path="/{n}\n"', 1.0 + n))
            got = [await anext(sub) for _ in range(3)]
        assert [entry.line.message for entry in got] == [f'path="/{n}\n"' for n in range(3)]
        assert ingest.received == 3
        assert ingest.malformed == 0
    finally:
        sender.close()
        ingest.close()

    # Lines past one datagram's size go in the next; each datagram holds whole lines.
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    raw.bind(str(sock_path))
    raw.setblocking(False)
    sender = LogSender(sock_path, asyncio.get_running_loop())
    try:
        lines = [LogLine("app-1", "kapal", "router", "x" * 1000, float(n)) for n in range(150)]
        for line in lines:
            sender.send(line)
        await asyncio.sleep(0)
        datagrams = []
        with contextlib.suppress(BlockingIOError):
            while True:
                datagrams.append(raw.recv(1 << 17))
        assert len(datagrams) == 3
        assert all(len(datagram) <= MAX_DATAGRAM for datagram in datagrams)
        decoded = [LogLine.decode(part) for data in datagrams for part in data.split(b"\n")]
        assert decoded == lines
        assert sender.dropped == 0
    finally:
        sender.close()
        raw.close()


async def test_malformed_datagrams_are_counted_and_ignored(sock_path: Path) -> None:
    hub = LogHub()
    ingest = LogIngest(hub, sock_path)
    await ingest.start()
    bad = [
        b"\xff\xfe not json",
        b"{}",
        b"42",
        b'["only", "three", "fields"]',
        b'["app-1", "syslog", "web.1", "unknown source", 1.0]',
        b'["app-1", "app", "web.1", "no time", "soon"]',
        b'["app-1", "app", "web.1", "not a number", NaN]',
        b'["app-1", "app", "web.1", "too late", 1e300]',
        b'["", "app", "web.1", "no app", 1.0]',
        b"[" * 50_000 + b"]" * 50_000,
    ]
    try:
        with hub.subscribe("app-1") as sub:
            send_raw(sock_path, *bad, LogLine("app-1", "app", "web.1", "fine", 1.0).encode())
            # Datagrams from one socket arrive in order: the good one comes after every bad one.
            assert (await anext(sub)).line.message == "fine"
        assert ingest.malformed == len(bad)
        assert ingest.received == 1
        assert [e.line.message for e in hub.history("app-1")] == ["fine"]
    finally:
        ingest.close()


async def test_a_stale_socket_file_is_replaced(sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(sock_path))
    stale.close()  # the file stays behind, as after a crash
    hub = LogHub()
    ingest = LogIngest(hub, sock_path)
    await ingest.start()
    try:
        with hub.subscribe("app-1") as sub:
            send_raw(sock_path, LogLine("app-1", "app", "web.1", "after restart", 1.0).encode())
            assert (await anext(sub)).line.message == "after restart"
    finally:
        ingest.close()


def test_decode_datagram_round_trips_a_line() -> None:
    original = LogLine("app-1", "app", "web.1", "ünïcode \t tab", 1_700_000_000.123456)
    assert decode_datagram(original.encode()) == original
