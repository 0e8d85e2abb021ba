"""Each app's log lines on disk, so history survives restarts and can be searched.

`<root>/<app id>/<first seq>.log` segments of `seq formatted-line\\n`, plain text a person can
grep. Lines are buffered in memory and written together (on a short timer, or sooner when
much piles up), so a line costs a list append on the hot path; a crash of the agent loses at
most the last FLUSH_EVERY seconds. Old segments go when they pass the retention age or the
app's size cap; a segment is rotated at `segment_bytes`.

Reads (scan) are plain blocking file reads meant for a worker thread; they tolerate the
files growing or being pruned while they read.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kapal.domain.logline import LogLine
from kapal.logs.filters import ANY, LogFilter
from kapal.logs.subscription import Entry

FLUSH_EVERY = 0.2  # seconds lines may wait in memory before they are written
FLUSH_BYTES = 256 * 1024  # an app's buffered bytes that are written at once
SEGMENT_BYTES = 8 * 2**20
_APP_DIR = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_SEGMENT = re.compile(r"^(\d{1,20})\.log$")
_LINE = re.compile(r"^(\d+) (\S+) ([a-z]+)\[([^\]]*)\]: (.*)$", re.DOTALL)


def encode(entry: Entry) -> bytes:
    """One stored line; line breaks in a message would end it early, so they are escaped."""
    text = entry.text
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "\\r").replace("\n", "\\n")
    return f"{entry.seq} {text}\n".encode(errors="replace")


def decode(app_id: str, raw: bytes) -> Entry | None:
    """A stored line back; None for what is not one (a line cut by a crash, say)."""
    match = _LINE.match(raw.decode("utf-8", "replace"))
    if match is None:
        return None
    seq, stamp, source, dyno, message = match.groups()
    try:
        moment = datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
    return Entry(int(seq), LogLine(app_id, source, dyno, message, moment))


@dataclass(frozen=True, slots=True)
class Query:
    """What a search wants, newest first until `limit` lines match. Lines at or before
    `after` (a seq) or written before `since` (unix seconds) are not wanted, nor lines at or
    after `before` (a seq: the ones the caller already has in memory)."""

    log_filter: LogFilter = ANY
    limit: int = 100
    since: float | None = None
    after: int | None = None
    before: int | None = None


@dataclass(slots=True)
class _Segments:
    """An app's current segment, as far as this process knows."""

    path: Path | None = None
    size: int = 0
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0


class LogArchive:
    def __init__(
        self,
        root: Path,
        *,
        retention: float = 0.0,  # seconds; 0 keeps lines until the size cap removes them
        max_bytes: int = 100 * 2**20,
        segment_bytes: int = SEGMENT_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.retention = retention
        self.max_bytes = max_bytes
        # Several segments per app, so the cap removes old lines a slice at a time.
        self.segment_bytes = max(4096, min(segment_bytes, max_bytes // 4))
        self.clock = clock
        self._apps: dict[str, _Segments] = {}

    # Writing (on the event loop).

    def append(self, entry: Entry) -> bool:
        """Buffer a line; True when the app's buffer is big enough to flush now."""
        if entry.seq is None:
            return False  # hub notices for one session are not part of the stream
        app = self._apps.get(entry.line.app_id)
        if app is None:
            app = self._apps[entry.line.app_id] = _Segments()
        data = encode(entry)
        app.pending.append(data)
        app.pending_bytes += len(data)
        return app.pending_bytes >= FLUSH_BYTES

    def flush(self, app_id: str | None = None) -> None:
        """Write what is buffered (for one app, or all); a failing disk loses those lines
        rather than stopping the hub."""
        for key in [app_id] if app_id is not None else list(self._apps):
            app = self._apps.get(key)
            if app is not None and app.pending:
                pending, app.pending, app.pending_bytes = app.pending, [], 0
                with contextlib.suppress(OSError):
                    self._write(key, app, pending)

    def _write(self, app_id: str, app: _Segments, lines: list[bytes]) -> None:
        """Append to the current segment, starting a new one each time it is full."""
        start = 0
        while start < len(lines):
            if app.path is None or app.size >= self.segment_bytes or not app.path.exists():
                self._open_segment(app_id, app, lines[start])
            assert app.path is not None
            end, room = start, self.segment_bytes - app.size
            while end < len(lines) and (room > 0 or end == start):
                room -= len(lines[end])
                end += 1
            data = b"".join(lines[start:end])
            fd = os.open(app.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            app.size += len(data)
            start = end

    def _open_segment(self, app_id: str, app: _Segments, first_line: bytes) -> None:
        """The newest segment if it has room, else a new one named by its first seq."""
        directory = self.root / app_id
        directory.mkdir(parents=True, exist_ok=True)
        newest = _newest(directory)
        if newest is not None and newest.stat().st_size < self.segment_bytes:
            app.path, app.size = newest, newest.stat().st_size
        else:
            first_seq = int(first_line.split(b" ", 1)[0])
            app.path, app.size = directory / f"{first_seq:020d}.log", 0

    # Keeping it within bounds.

    def prune(self, keep_apps: Iterable[str] | None = None, made_before: float = 0.0) -> int:
        """Remove segments past the retention age or the size cap, and, given the apps that
        still exist, the logs of the others that were last written before `made_before`.
        Returns how many files went."""
        removed = 0
        keep = set(keep_apps) if keep_apps is not None else None
        now = self.clock()
        for directory in self._app_dirs():
            app_id = directory.name
            if keep is not None and app_id not in keep:
                with contextlib.suppress(OSError):
                    if directory.stat().st_mtime < made_before:
                        for segment in directory.iterdir():
                            segment.unlink()
                            removed += 1
                        directory.rmdir()
                        self._apps.pop(app_id, None)
                continue
            segments = _segments(directory)
            sizes = []
            for segment in segments:
                with contextlib.suppress(FileNotFoundError):
                    sizes.append((segment, segment.stat()))
            total = sum(stat.st_size for _, stat in sizes)
            for segment, stat in sizes:  # oldest first
                expired = self.retention and stat.st_mtime < now - self.retention
                if not expired and total <= self.max_bytes:
                    break
                with contextlib.suppress(FileNotFoundError):
                    segment.unlink()
                    removed += 1
                total -= stat.st_size
                current = self._apps.get(app_id)
                if current is not None and current.path == segment:
                    current.path = None
        return removed

    # Reading (blocking: run in a thread).

    def app_ids(self) -> list[str]:
        return [directory.name for directory in self._app_dirs()]

    def recent(self, app_id: str, limit: int) -> list[Entry]:
        """The app's last `limit` stored lines, oldest first (for the hub's memory at start)."""
        return self.scan(app_id, Query(limit=limit))

    def scan(self, app_id: str, query: Query) -> list[Entry]:
        """The newest `query.limit` stored lines that match, oldest first."""
        found: list[Entry] = []
        if query.limit <= 0:
            return found
        for entry in self._newest_first(app_id, query.since):
            seq = entry.seq
            assert seq is not None
            if query.before is not None and seq >= query.before:
                continue
            if query.after is not None and seq <= query.after:
                break
            if query.since is not None and entry.line.time < query.since:
                continue  # lines of a segment are in arrival order, their times nearly so
            if query.log_filter.matches(entry.line):
                found.append(entry)
                if len(found) == query.limit:
                    break
        found.reverse()
        return found

    def _newest_first(self, app_id: str, since: float | None) -> Iterator[Entry]:
        if not _APP_DIR.match(app_id):
            return
        for segment in reversed(_segments(self.root / app_id)):
            try:
                if since is not None and segment.stat().st_mtime < since:
                    return  # this one and all older ones were last written before `since`
                data = segment.read_bytes()
            except FileNotFoundError:
                continue  # pruned while we looked
            for raw in reversed(data.split(b"\n")):
                entry = decode(app_id, raw) if raw else None
                if entry is not None:
                    yield entry

    def _app_dirs(self) -> list[Path]:
        try:
            return [d for d in self.root.iterdir() if d.is_dir() and _APP_DIR.match(d.name)]
        except OSError:
            return []


def _segments(directory: Path) -> list[Path]:
    """An app's segments, oldest first."""
    try:
        names = [(int(m[1]), p) for p in directory.iterdir() if (m := _SEGMENT.match(p.name))]
    except OSError:  # gone, or not a directory
        return []
    return [path for _, path in sorted(names)]


def _newest(directory: Path) -> Path | None:
    segments = _segments(directory)
    return segments[-1] if segments else None
