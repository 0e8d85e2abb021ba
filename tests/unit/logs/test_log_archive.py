"""The archive: app log lines on disk, read back, searched, kept within age and size."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kapal.domain.logline import LogLine
from kapal.logs.archive import LogArchive, Query, decode, encode
from kapal.logs.filters import LogFilter
from kapal.logs.hub import LogHub
from kapal.logs.subscription import Entry

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def line(message: str, dyno: str = "web.1", app_id: str = "app-1", at: float = T0) -> LogLine:
    return LogLine(app_id, "app", dyno, message, at)


def fill(archive: LogArchive, count: int, app_id: str = "app-1", start: int = 1) -> None:
    for i in range(count):
        archive.append(Entry(start + i, line(f"m{i}", app_id=app_id, at=T0 + i)))
    archive.flush()


def messages(entries: list[Entry]) -> list[str]:
    return [entry.line.message for entry in entries]


def test_a_stored_line_reads_back_as_it_was() -> None:
    entry = Entry(42, LogLine("app-1", "kapal", "router", "at=info path=/ ]: x", T0 + 0.123456))
    assert decode("app-1", encode(entry).rstrip(b"\n")) == entry


def test_line_breaks_in_a_message_cannot_make_a_second_stored_line() -> None:
    forged = "ok\n2 2026-11-27T10:00:00.000000+00:00 kapal[router]: forged"
    raw = encode(Entry(1, line(forged)))
    assert raw.count(b"\n") == 1
    back = decode("app-1", raw.rstrip(b"\n"))
    assert back is not None and back.line.source == "app" and "\\n" in back.line.message


@pytest.mark.parametrize("raw", [b"", b"garbage", b"12 not-a-time app[web.1]: x", b"x y z"])
def test_what_is_not_a_stored_line_is_skipped(raw: bytes) -> None:
    assert decode("app-1", raw) is None


def test_recent_lines_come_back_oldest_first_across_segments(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path, segment_bytes=4096, max_bytes=10 * 2**20)
    fill(archive, 500)
    assert len(list((tmp_path / "app-1").iterdir())) > 3
    assert messages(archive.recent("app-1", 3)) == ["m497", "m498", "m499"]
    assert len(archive.recent("app-1", 10_000)) == 500
    assert archive.recent("nobody", 10) == []


def test_scan_filters_by_text_dyno_since_and_seq(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path)
    for i in range(100):
        dyno = "web.1" if i % 2 else "worker.1"
        text = f"Error {i}" if i % 10 == 0 else f"fine {i}"
        archive.append(Entry(i + 1, line(text, dyno, at=T0 + i)))
    archive.flush()
    found = archive.scan("app-1", Query(LogFilter(grep="ERROR"), limit=3))
    assert messages(found) == ["Error 70", "Error 80", "Error 90"]
    found = archive.scan("app-1", Query(LogFilter(dyno="web"), limit=2, since=T0 + 95))
    assert messages(found) == ["fine 97", "fine 99"]
    assert messages(archive.scan("app-1", Query(limit=100, after=98))) == ["fine 98", "fine 99"]
    assert messages(archive.scan("app-1", Query(limit=2, before=3))) == ["Error 0", "fine 1"]


def test_hub_notices_without_a_seq_are_not_stored(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path)
    archive.append(Entry(None, line("L11 for one session")))
    archive.flush()
    assert archive.recent("app-1", 10) == []


def test_the_size_cap_removes_the_oldest_segments(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path, max_bytes=64 * 1024, segment_bytes=8 * 1024)
    fill(archive, 3000)
    archive.prune()
    total = sum(p.stat().st_size for p in (tmp_path / "app-1").iterdir())
    assert total <= 64 * 1024
    kept = archive.recent("app-1", 10_000)
    assert kept[-1].line.message == "m2999"
    assert kept[0].seq is not None and kept[0].seq > 1
    fill(archive, 10, start=5000)  # writing goes on after its segment was removed
    assert archive.recent("app-1", 1)[0].seq == 5009


def test_retention_removes_segments_last_written_too_long_ago(tmp_path: Path) -> None:
    now = [T0 + 10 * 86400]
    archive = LogArchive(tmp_path, retention=7 * 86400, segment_bytes=4096, clock=lambda: now[0])
    fill(archive, 300)
    segments = sorted((tmp_path / "app-1").iterdir())
    for old in segments[:-1]:
        os.utime(old, (T0, T0))  # written 10 days before `now`
    os.utime(segments[-1], (now[0], now[0]))
    assert archive.prune() == len(segments) - 1
    assert [p.name for p in (tmp_path / "app-1").iterdir()] == [segments[-1].name]


def test_a_deleted_apps_logs_go_once_it_is_gone(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path)
    fill(archive, 5, app_id="kept")
    fill(archive, 5, app_id="deleted")
    archive.prune(keep_apps={"kept"}, made_before=0.0)  # written after: may be a new app
    assert sorted(archive.app_ids()) == ["deleted", "kept"]
    archive.prune(keep_apps={"kept"}, made_before=T0 * 2)
    assert archive.app_ids() == ["kept"]


def test_a_disk_that_fails_loses_lines_but_not_the_hub(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the directory should be")
    archive = LogArchive(blocker)
    fill(archive, 3)  # flush() must not raise
    assert archive.recent("app-1", 10) == []


@pytest.mark.anyio
async def test_the_hub_keeps_its_history_across_a_restart(tmp_path: Path) -> None:
    first = LogHub(history_lines=50, archive=LogArchive(tmp_path))
    seqs = [first.append(line(f"m{i}")) for i in range(80)]
    first.close()  # writes what is buffered

    second = LogHub(history_lines=50, archive=LogArchive(tmp_path))
    await second.load()
    kept = second.history("app-1", n=1000)
    assert messages(kept) == [f"m{i}" for i in range(30, 80)]
    assert [e.seq for e in kept] == seqs[30:]
    assert second.append(line("after")) > seqs[-1]
    second.close()


@pytest.mark.anyio
async def test_search_reaches_past_memory_into_the_archive(tmp_path: Path) -> None:
    hub = LogHub(history_lines=20, archive=LogArchive(tmp_path))
    for i in range(200):
        hub.append(line(f"needle {i}" if i in (3, 150) else f"hay {i}", at=T0 + i))
    # Not flushed yet: search writes the buffered lines before reading the files.
    found = await hub.search("app-1", Query(LogFilter(grep="Needle"), limit=10))
    assert messages(found) == ["needle 3", "needle 150"]
    found = await hub.search("app-1", Query(limit=30))
    assert messages(found) == [f"hay {i}" for i in range(170, 200)]
    found = await hub.search("app-1", Query(limit=1000, since=T0 + 190))
    assert messages(found) == [f"hay {i}" for i in range(190, 200)]
    hub.close()


@pytest.mark.anyio
async def test_search_stays_in_memory_when_memory_holds_everything(tmp_path: Path) -> None:
    archive = LogArchive(tmp_path)
    hub = LogHub(history_lines=20, archive=archive)
    for i in range(5):
        hub.append(line(f"m{i}"))
    (tmp_path / "app-1").mkdir(parents=True, exist_ok=True)
    assert messages(await hub.search("app-1", Query(limit=100))) == [f"m{i}" for i in range(5)]
    assert archive.recent("app-1", 10) == []  # nothing had to be written to answer
    hub.close()
