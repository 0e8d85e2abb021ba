"""A dyno's terminal (`kapal run bash`): a pseudo-terminal whose slave end is the process's
stdin, stdout, stderr and controlling terminal, and whose master end the agent reads and
writes as the process's `stdout` and `stdin` streams. What the terminal does with the bytes
typed into it (echo, Ctrl-C as SIGINT to the foreground process group, Ctrl-D as end of
input) is the kernel's line discipline, as on any terminal."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from collections.abc import Callable
from pathlib import Path

from kapal.domain.rendezvous import Size

Process = asyncio.subprocess.Process

_CHUNK = 65536
_HIGH_WATER = 64 * 1024  # bytes of input waiting for the terminal before writers wait


def set_size(fd: int, size: Size) -> None:
    """Set the window size of the terminal `fd` is an end of; the kernel tells its foreground
    process group with SIGWINCH."""
    rows, columns = size
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


async def start(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    size: Size,
    preexec: Callable[[], None],
    pass_fds: tuple[int, ...] = (),
) -> Process:
    """Start `argv` in a session of its own with a new terminal of `size` as its stdio and
    controlling terminal; `preexec` (the driver's) runs in the child after that."""
    master, slave = os.openpty()
    try:
        set_size(master, size)
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
            pass_fds=pass_fds,
            preexec_fn=_controlled_by(slave, preexec),
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)  # else the end of the output (EIO on the master) never comes
    process.stdout, process.stdin = _Master.streams(master)
    return process


def resize(process: Process, size: Size) -> None:
    """Resize the terminal of a process `start` started (nothing for other processes)."""
    transport = process.stdin.transport if process.stdin is not None else None
    if isinstance(transport, _Master):
        transport.resize(size)


def _controlled_by(slave: int, preexec: Callable[[], None]) -> Callable[[], None]:
    """The child's preexec: become a session leader, take the terminal as the controlling
    terminal, then run the driver's preexec (which may drop privileges or enter namespaces).
    It uses the slave's own descriptor, not 0, and calls setsid itself: uvloop, which runs
    the agent, calls preexec_fn right after fork, before it sets up stdio and sessions."""

    def child() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        preexec()

    return child


class _Master(asyncio.Transport):
    """The master end as one transport over a descriptor it owns, on any event loop: output
    into a StreamReader, input written with buffering and flow control. It closes when the
    output ends, which is when no process has the terminal open any more (Linux then reads
    EIO, after what was written is read)."""

    def __init__(
        self, fd: int, reader: asyncio.StreamReader, protocol: asyncio.BaseProtocol
    ) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._fd = fd
        self._reader = reader
        self._protocol = protocol
        self._input = bytearray()
        self._input_lost = False
        self._paused = False
        self._reading = False
        self._closing = False
        os.set_blocking(fd, False)
        reader.set_transport(self)
        protocol.connection_made(self)
        self.resume_reading()

    @classmethod
    def streams(cls, fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_CHUNK, loop=loop)
        protocol = asyncio.streams.FlowControlMixin(loop=loop)
        transport = cls(fd, reader, protocol)
        return reader, asyncio.StreamWriter(transport, protocol, None, loop)

    def resize(self, size: Size) -> None:
        if not self._closing:
            set_size(self._fd, size)

    # Output.

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, _CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # EIO: every process let go of the terminal
        if data:
            self._reader.feed_data(data)
        else:
            self.close()

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._closing:
            self._loop.add_reader(self._fd, self._read_ready)
            self._reading = True

    # Input.

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._input_lost or not data:
            return
        if not self._input:
            try:
                written = os.write(self._fd, data)
            except (BlockingIOError, InterruptedError):
                written = 0
            except OSError:
                self._input_lost = True  # the terminal is being hung up; its output goes on
                return
            data = data[written:]
            if not data:
                return
            self._loop.add_writer(self._fd, self._write_ready)
        self._input += data
        if not self._paused and len(self._input) > _HIGH_WATER:
            self._paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            written = os.write(self._fd, self._input)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            written, self._input_lost = len(self._input), True
        del self._input[:written]
        if not self._input:
            self._loop.remove_writer(self._fd)
        if self._paused and len(self._input) <= _HIGH_WATER // 4:
            self._paused = False
            self._protocol.resume_writing()

    def get_write_buffer_size(self) -> int:
        return len(self._input)

    def can_write_eof(self) -> bool:
        return False  # a terminal's end of input is Ctrl-D, typed like any other key

    # Both.

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Hang the terminal up: what was not yet read or written is dropped."""
        if self._closing:
            return
        self._closing = True
        self.pause_reading()
        if self._input:
            self._loop.remove_writer(self._fd)
            self._input.clear()
        os.close(self._fd)
        self._reader.feed_eof()
        self._loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()
