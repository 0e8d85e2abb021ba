"""Build output in the buildpack style: `-----> ` steps, 7-space details, ` !     ` errors.

The formatting is pure; `BuildOutput` appends lines to the build's log file and flushes each
one, because the output stream URL tails that file while the build runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

STEP = "-----> "
INDENT = " " * 7
ERROR = " !     "
MAX_LINE = 64 * 1024


def step(text: str) -> str:
    return f"{STEP}{text}"


def detail(text: str) -> str:
    return f"{INDENT}{text}" if text else ""


def error(text: str) -> str:
    return f"{ERROR}{text}"


def human_size(size: int) -> str:
    """Sizes the way the slug compiler prints them: `43.4M`, or `680K` under a megabyte."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}M"
    return f"{max(1, round(size / 1024))}K"


def split_lines(pending: bytes, chunk: bytes) -> tuple[list[str], bytes]:
    """Complete lines of subprocess output (decoded, `\\r` progress collapsed) and the rest."""
    data = pending + chunk
    *complete, rest = data.split(b"\n")
    lines = [decode_line(raw) for raw in complete]
    # A line without end is cut into pieces, not held whole in the platform's memory.
    while len(rest) > MAX_LINE:
        lines.append(decode_line(rest[:MAX_LINE]))
        rest = rest[MAX_LINE:]
    return lines, rest


def decode_line(raw: bytes) -> str:
    """One line of subprocess output as text."""
    # A progress bar redraws with \r; only its last state is worth keeping in a log.
    text = raw.decode("utf-8", "replace").rstrip("\r")
    return text.rsplit("\r", 1)[-1]


class BuildOutput:
    """The build's log: every line is written through at once, for live streaming."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: BinaryIO = path.open("ab")

    def line(self, text: str = "") -> None:
        self._file.write(text.encode("utf-8", "replace") + b"\n")
        self._file.flush()

    def step(self, text: str) -> None:
        self.line(step(text))

    def detail(self, text: str) -> None:
        self.line(detail(text))

    def error(self, text: str) -> None:
        self.line(error(text))

    def close(self) -> None:
        self._file.close()
