"""A dyno's output pipes: real pipes of the agent's own, as large as the kernel lets it make
them, read by the event loop.

Not the event loop's own subprocess pipes: uvloop's are socket pairs, whose buffer (about
200 KiB) F_SETPIPE_SZ cannot enlarge, so a dyno writing a flood of lines blocked whenever the
agent was busy for a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os

PIPE_SIZE = 1 << 20  # the kernel's buffer asked for each pipe (Linux's default limit for it)
# What a reader may hold before the loop stops reading its pipe (it does at twice this): as
# much as one read of the log takes, so that each turn of the loop empties the pipe.
READ_LIMIT = 1 << 20

Process = asyncio.subprocess.Process


class PipeReader(asyncio.StreamReader):
    """What is written into one pipe, read by the event loop; `close()` lets go of the pipe
    even while some process still holds its write end."""

    def __init__(self) -> None:
        super().__init__(limit=READ_LIMIT)
        self.transport: asyncio.ReadTransport | None = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_pipe() -> tuple[PipeReader, int]:
    """A new pipe of PIPE_SIZE bytes (the kernel's default size where it refuses): a reader
    on its read end, and its write end for a child, to close once the child has it."""
    read_end, write_end = os.pipe()  # close-on-exec: no other child gets them
    loop = asyncio.get_running_loop()
    reader = PipeReader()
    try:
        # Refused: above fs.pipe-max-size, or the agent's user has its share of pipe memory.
        with contextlib.suppress(PermissionError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        # uvloop's transport closes the descriptor itself (libuv), then the file object: one
        # that closed it too would close a number another thread may just have been given.
        # asyncio's own loop closes it only through the file object.
        closefd = isinstance(loop, asyncio.BaseEventLoop)
        pipe = os.fdopen(read_end, "rb", 0, closefd=closefd)
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        raise
    try:
        reader.transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
    except BaseException:
        os.close(write_end)
        raise
    return reader, write_end


def close_output(process: Process) -> None:
    """Let go of the pipes `process`'s output came through, read or not (nothing for a
    terminal: it closes itself)."""
    for stream in (process.stdout, process.stderr):
        if isinstance(stream, PipeReader):
            stream.close()
