"""The local terminal while `kapal run` is attached to a dyno's terminal: raw, so that every
key (Ctrl-C and Ctrl-D included) goes to the dyno, and watched for window size changes."""

from __future__ import annotations

import contextlib
import os
import signal
import termios
import tty
from collections.abc import Callable, Iterator
from types import FrameType

from kapal.domain.rendezvous import Size


def size(fd: int) -> Size:
    """(rows, columns) of the terminal `fd` is open on."""
    columns, rows = os.get_terminal_size(fd)
    return rows, columns


@contextlib.contextmanager
def raw(fd: int, on_resize: Callable[[Size], None]) -> Iterator[None]:
    """The terminal `fd` in raw mode, `on_resize` called with its size now and on every
    SIGWINCH; as it was on the way out."""
    saved = termios.tcgetattr(fd)

    def resized(signum: int, frame: FrameType | None) -> None:
        # A handler that raised would interrupt whatever the main thread is doing.
        with contextlib.suppress(OSError):
            on_resize(size(fd))

    previous = signal.signal(signal.SIGWINCH, resized)
    try:
        tty.setraw(fd)
        resized(signal.SIGWINCH, None)  # it may have changed since the dyno was asked for
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
