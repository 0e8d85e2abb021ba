"""Reading a dyno's output: line by line into the log hub, and the tail of it kept as text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from kapal.domain.logline import LogLine, clean_message
from kapal.runtime.state import LogSink


async def read_lines(stream: asyncio.StreamReader, emit: Callable[[bytes], None]) -> None:
    """Call `emit` for each line until EOF; a line longer than the stream's buffer limit
    comes out in pieces rather than stopping the reader."""
    overran = False
    while True:
        try:
            line = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                emit(exc.partial)
            return
        except asyncio.LimitOverrunError as exc:
            emit(await stream.readexactly(exc.consumed))
            overran = True
            continue
        if overran and line == b"\n":
            overran = False  # the end of the long line just emitted
            continue
        overran = False
        emit(line)


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
        for message in clean_message(raw):
            self.sink.append(LogLine(self.app_id, "app", self.dyno, message, self.clock()))

    def platform(self, message: str) -> None:
        self.sink.append(LogLine(self.app_id, "kapal", self.dyno, message, self.clock()))
