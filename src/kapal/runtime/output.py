"""Reading a dyno's output: raw chunks off its pipes, made into log lines as fast as the log
hub takes them, and the tail of it kept as text.

Reading never waits for the hub: a dyno that writes faster than the hub takes lines is held
back only by how often the event loop gets to read its pipe, never by the hub's pace. Each
pipe's unprocessed bytes wait in a `Backlog`, bounded in bytes (memory) and in age (delay):
lines that would not fit, and lines that waited too long, are dropped, counted, and reported
in the dyno's log (Heroku's L12).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kapal.domain.logline import MAX_LINE_BYTES, LogLine, clean_message
from kapal.runtime.state import LogSink

READ_SIZE = 1 << 20  # bytes asked for by each read of a pipe
BACKLOG = 512 * 1024  # unprocessed bytes kept per pipe (stdout, stderr): 1 MiB per dyno
# Seconds a line may wait in its backlog, from when it was read off its pipe: under a flood
# the log gets lines at most this old, not lines queued behind the whole backlog. With a turn
# of the loop under load (a few ms) and the tail session's own delivery (under 10 ms at p99
# when the hub keeps up), a line read promptly reaches a tail client within 50 ms, and a
# burst the hub takes within it (about a thousand lines at 50,000 lines/s) comes out whole.
# Less would drop more of bursts and buys no lower p99 under a flood, where what a line waits
# before it is read dominates (bench/logs.py).
MAX_AGE = 0.025
# Under a flood lines go missing at each turn of the loop: their counts are added up into at
# most one notice per pipe this often (seconds), not one between every two turns' lines.
NOTICE_EVERY = 1.0
# Bytes of lines each pipe gives the hub per turn of the event loop: small, so that the loop
# turns often under a flood (pipes are read, other tasks run, a tail gets every dyno's lines).
TURN = 4 * 1024
# What clean_message() would change: control characters but tab, a newline or CR to strip,
# and anything not ASCII (to decode, maybe to replace).
_NOT_PLAIN = re.compile(rb"[\x00-\x08\x0a-\x1f\x80-\xff]")


def overflow_notice(dyno: str, dropped: int, since: float) -> str:
    """Heroku's L12 message: lines of a dyno lost before they reached its log."""
    stamp = datetime.fromtimestamp(since, UTC).isoformat(timespec="microseconds")
    return f"Error L12 (Local buffer overflow) -> {dyno} dropped {dropped} lines since {stamp}"


@dataclass(frozen=True, slots=True)
class Dropped:
    """Where lines went missing: how many, and since when (unix seconds)."""

    lines: int
    since: float


@dataclass(slots=True)
class _Gap:
    at: int  # offset in the pipe's output (bytes since it opened) where lines went missing
    lines: int
    since: float


class Backlog:
    """One pipe's output not yet made into log lines: chunks in as they are read, lines out
    as the log takes them. Lines are dropped whole, and counted where they were: those that
    come while it holds `limit` bytes or more, and those that waited more than `max_age`
    seconds when the log gets to them. Where drops follow each other, at most one count
    comes out every `notice_every` seconds (or once the log has caught up)."""

    def __init__(
        self,
        limit: int = BACKLOG,
        clock: Callable[[], float] = time.time,
        *,
        max_age: float = MAX_AGE,
        notice_every: float = NOTICE_EVERY,
    ) -> None:
        self.limit = limit
        self.clock = clock
        self.max_age = max_age
        self.notice_every = notice_every
        self.ended = False
        self._data = bytearray()
        self._start = 0  # offset of _data[0] in the pipe's output
        self._arrived: deque[tuple[int, float]] = deque()  # (end offset of a chunk, read at)
        self._gaps: deque[_Gap] = deque()  # where in _data lines went missing, in order
        self._counted = 0  # lines dropped at gaps passed, not reported yet
        self._counted_since = 0.0
        self._reported = float("-inf")  # when a count last came out
        self._skipping = False  # in a line whose start was dropped: the rest of it goes too
        self._continued = False  # _data starts with the rest of a line given out in pieces

    def feed(self, chunk: bytes) -> None:
        """Take what was read; cheap, whatever the state of the log."""
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            self._skipping = False
            chunk = chunk[newline + 1 :]
        if not chunk:
            return
        now = self.clock()
        data = self._data
        if len(data) < self.limit:
            data += chunk
            self._arrived.append((self._start + len(data), now))
            return
        # The line the chunk would complete goes too: it would come out cut in two.
        kept = data.rfind(b"\n") + 1
        del data[kept:]
        if not kept:
            self._continued = False
        at = self._start + kept
        arrived = self._arrived
        for i in range(len(arrived) - 1, -1, -1):  # what was read of that line is gone
            end, read_at = arrived[i]
            if end <= at:
                break
            arrived[i] = (at, read_at)
        lines = chunk.count(b"\n")
        if not chunk.endswith(b"\n"):
            lines += 1
            self._skipping = True
        if self._gaps and self._gaps[-1].at == at:
            self._gaps[-1].lines += lines
        else:
            self._gaps.append(_Gap(at, lines, now))

    def end(self) -> None:
        """Nothing more will be read (EOF)."""
        self.ended = True

    @property
    def finished(self) -> bool:
        return self.ended and not self._data and not self._gaps and not self._counted

    def take(self, budget: int) -> list[bytes | Dropped]:
        """Complete lines (without their newline) of about `budget` bytes in all, and where
        lines were dropped, how many. A line without a newline after MAX_LINE_BYTES comes
        out in pieces of that size; the last line at EOF comes out without one."""
        now = self.clock()
        self._expire(now - self.max_age)
        taken: list[bytes | Dropped] = []
        data, gaps = self._data, self._gaps
        caught_up = False
        while budget > 0:
            if gaps and gaps[0].at == self._start:
                self._count(gaps.popleft())
                if now - self._reported >= self.notice_every:
                    taken.append(self._report(now))
                continue
            stop = len(data) if not gaps else gaps[0].at - self._start
            end = data.rfind(b"\n", 0, min(stop, budget)) + 1
            if not end:  # one line, longer than what is left of the budget
                end = data.find(b"\n", 0, min(stop, MAX_LINE_BYTES)) + 1
            if end:
                lines = bytes(data[:end]).split(b"\n")
                lines.pop()  # what follows the last newline: nothing
                if self._continued and not lines[0]:
                    del lines[0]  # the end of a line whose pieces went out already
                self._continued = False
                taken += lines
            elif stop >= MAX_LINE_BYTES:
                end = _cut(data, MAX_LINE_BYTES)
                taken.append(bytes(data[:end]))
                self._continued = True
            elif self.ended and data:
                end = len(data)
                taken.append(bytes(data))
            else:
                caught_up = True
                break
            del data[:end]
            self._start += end
            budget -= end
        arrived = self._arrived
        while arrived and arrived[0][0] <= self._start:
            arrived.popleft()
        if caught_up and self._counted:
            taken.append(self._report(now))
        return taken

    def _expire(self, cutoff: float) -> None:
        """Drop the lines read before `cutoff`; they leave a gap where they were."""
        arrived = self._arrived
        if not arrived or arrived[0][1] >= cutoff:
            return
        since = arrived[0][1]
        stale = self._start
        while arrived and arrived[0][1] < cutoff:
            stale = arrived.popleft()[0]
        data = self._data
        end = data.rfind(b"\n", 0, stale - self._start) + 1
        if not end:
            return  # the start of one line, which ends in a chunk read since
        lines = data.count(b"\n", 0, end)
        if self._continued and data[0] == ord("\n"):
            lines -= 1  # only the end of a line whose pieces went out already
        self._continued = False
        del data[:end]
        self._start += end
        gaps = self._gaps
        while gaps and gaps[0].at <= self._start:  # gaps among the lines dropped: one now
            gap = gaps.popleft()
            lines += gap.lines
            since = min(since, gap.since)
        if lines:
            gaps.appendleft(_Gap(self._start, lines, since))

    def _count(self, gap: _Gap) -> None:
        if not self._counted:
            self._counted_since = gap.since
        self._counted += gap.lines

    def _report(self, now: float) -> Dropped:
        dropped = Dropped(self._counted, self._counted_since)
        self._counted, self._reported = 0, now
        return dropped

    def discard(self) -> Dropped | None:
        """Give up on what is left (reading was cut off): the lines it held, and those
        dropped, counted as dropped; None if there were none."""
        data = self._data
        lines = data.count(b"\n") + (bool(data) and not data.endswith(b"\n"))
        lines += self._counted + sum(gap.lines for gap in self._gaps)
        if self._counted:
            since = self._counted_since
        elif self._gaps:
            since = self._gaps[0].since
        else:
            since = self.clock()
        self._start += len(data)
        data.clear()
        self._arrived.clear()
        self._gaps.clear()
        self._counted, self.ended = 0, True
        return Dropped(lines, since) if lines else None


def _cut(data: bytearray, size: int) -> int:
    """`size`, or up to 3 bytes less so as not to cut a UTF-8 character in two."""
    for end in range(size, max(0, size - 4), -1):
        if end >= len(data) or data[end] & 0xC0 != 0x80:  # not a continuation byte
            return end
    return size


async def read_output(
    streams: Sequence[asyncio.StreamReader],
    line: Callable[[bytes], None],
    dropped: Callable[[Dropped], None],
    *,
    limit: int = BACKLOG,
    turn: int = TURN,
    clock: Callable[[], float] = time.time,
) -> None:
    """Read `streams` until EOF of each, their lines into `line` at most `turn` bytes of
    each per turn of the event loop (reading goes on between), and where lines were
    dropped into `dropped`."""
    backlogs = [Backlog(limit, clock) for _ in streams]
    fed = asyncio.Event()

    async def read(stream: asyncio.StreamReader, backlog: Backlog) -> None:
        while chunk := await stream.read(READ_SIZE):
            backlog.feed(chunk)
            fed.set()
        backlog.end()
        fed.set()

    async def process() -> None:
        try:
            while not all(backlog.finished for backlog in backlogs):
                fed.clear()
                took = False
                for backlog in backlogs:
                    for item in backlog.take(turn):
                        took = True
                        if isinstance(item, Dropped):
                            dropped(item)
                        else:
                            line(item)
                if took:
                    await asyncio.sleep(0)  # let the pipes be read
                else:
                    await fed.wait()
        finally:
            for backlog in backlogs:  # cut off (cancelled): what is left counts as dropped
                left = backlog.discard()
                if left is not None:
                    dropped(left)

    async with asyncio.TaskGroup() as tasks:
        for stream, backlog in zip(streams, backlogs, strict=True):
            tasks.create_task(read(stream, backlog))
        tasks.create_task(process())


class TailBuffer:
    """The last `limit` bytes written to it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()

    def write(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > self.limit:
            del self._data[: len(self._data) - self.limit]

    def text(self) -> str:
        return self._data.decode("utf-8", "replace")


class DynoLog:
    """Lines of one dyno: its output (`app[web.1]`) and platform events (`kapal[web.1]`)."""

    def __init__(
        self, sink: LogSink, app_id: str, dyno: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.sink = sink
        self.app_id = app_id
        self.dyno = dyno
        self.clock = clock

    def output(self, raw: bytes) -> None:
        """One line of the dyno's output (its newline, if any, is dropped)."""
        if len(raw) <= MAX_LINE_BYTES and not _NOT_PLAIN.search(raw):
            # Printable ASCII, as most lines are: nothing to clean, 10 times faster.
            message = raw.decode("ascii")
            self.sink.append(LogLine(self.app_id, "app", self.dyno, message, self.clock()))
            return
        for message in clean_message(raw):
            self.sink.append(LogLine(self.app_id, "app", self.dyno, message, self.clock()))

    def platform(self, message: str) -> None:
        self.sink.append(LogLine(self.app_id, "kapal", self.dyno, message, self.clock()))
