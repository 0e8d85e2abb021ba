"""The rendezvous wire protocol, shared by the API (it mints attach secrets), the agent (it
serves them) and the CLI (it attaches). Pure: formats and parsers only.

1. The client sends `SECRET[ exit-status]\\r\\n`. The secret is a random token, followed by
   `.` and the launch options (terminal size, extra environment; base64url JSON) when the
   dyno has any. The API stores only the SHA-256 of the whole secret, so the options cannot
   be changed by whoever holds the URL.
2. The agent answers one greeting line, on its own (Heroku's CLI drops its first read), then
   relays raw bytes both ways.
3. With a terminal, every byte from the client is typed into it (Ctrl-C and Ctrl-D too),
   except `ESC [ 8 ; ROWS ; COLS t`, which resizes it. Without one, EOT ends the dyno's stdin.
4. Asked for `exit-status`, the agent ends the output with `\\uffff kapal-command-exit-status:
   N\\n`. Then it closes the connection.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kapal.domain.errors import InvalidParams

Size = tuple[int, int]  # rows, columns

EOT = b"\x04"
EXIT_STATUS = "exit-status"
MARKER = "\uffff kapal-command-exit-status: ".encode()
DEFAULT_SIZE: Size = (24, 80)
MAX_DIMENSION = 9999


def secret_line(secret: str, *, exit_status: bool = False) -> bytes:
    """What a client sends first; with `exit_status`, the agent reports the status at the end."""
    return f"{secret}{' ' + EXIT_STATUS if exit_status else ''}\r\n".encode()


def parse_secret_line(line: bytes) -> tuple[str, frozenset[str]]:
    """The secret (Heroku's CLI may send the URL path's leading slash) and the options."""
    words = line.decode("ascii", "replace").split()
    if not words:
        return "", frozenset()
    return words[0].lstrip("/"), frozenset(words[1:])


def status_trailer(status: int) -> bytes:
    return MARKER + f"{status}\n".encode()


@dataclass(frozen=True)
class Launch:
    """What an attached one-off starts with besides its release: a terminal of `tty` size,
    or pipes when None, and environment variables over the config vars."""

    tty: Size | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def attach_secret(token: str, launch: Launch) -> str:
    """The secret a client presents: the random token, then the launch options if any."""
    if launch == Launch():
        return token
    document = {"tty": list(launch.tty) if launch.tty else None, "env": dict(launch.env)}
    encoded = json.dumps(document, separators=(",", ":")).encode()
    return f"{token}.{base64.urlsafe_b64encode(encoded).rstrip(b'=').decode()}"


def launch_of(secret: str) -> Launch:
    """The launch options an attach secret carries; ValueError if they are not readable."""
    _, dot, payload = secret.rpartition(".")
    if not dot:
        return Launch()
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"unreadable launch options: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError("launch options are not an object")
    tty, env = document.get("tty"), document.get("env") or {}
    if tty is not None and not (
        isinstance(tty, list) and len(tty) == 2 and all(isinstance(n, int) for n in tty)
    ):
        raise ValueError("launch options: tty is not [rows, columns]")
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ValueError("launch options: env is not an object of strings")
    return Launch((tty[0], tty[1]) if tty else None, env)


def terminal_size(env: Mapping[str, str]) -> Size:
    """The size a new terminal gets: LINES and COLUMNS of the dyno's env (Heroku's CLI sends
    its own terminal's), else 24 x 80; 0, what a terminal that does not know its size (a
    `script` session's) reports, also gets the default."""
    default_rows, default_columns = DEFAULT_SIZE
    try:
        rows = int(env.get("LINES") or 0) or default_rows
        columns = int(env.get("COLUMNS") or 0) or default_columns
    except ValueError:
        rows = columns = -1
    if not (0 < rows <= MAX_DIMENSION and 0 < columns <= MAX_DIMENSION):
        raise InvalidParams(
            f"LINES and COLUMNS must be whole numbers from 1 to {MAX_DIMENSION} "
            f"(got {env.get('LINES')!r} and {env.get('COLUMNS')!r})."
        )
    return rows, columns


def resize_sequence(size: Size) -> bytes:
    """xterm's `CSI 8 ; rows ; cols t` (resize the text area): a resize sent in-band."""
    return f"\x1b[8;{size[0]};{size[1]}t".encode()


_RESIZE = re.compile(rb"\x1b\[8;(\d{1,4});(\d{1,4})t")
_PARTIAL = re.compile(rb"\x1b(?:\[(?:8(?:;(?:\d{1,4}(?:;\d{0,4})?)?)?)?)?\Z")


class ResizeFilter:
    """Splits a terminal's input into what is typed and the resizes sent in-band. What could
    be the start of a resize split across reads is held back until the next read, or until
    `flush()`, which the reader calls when the client pauses: a lone ESC is the Escape key,
    which a full-screen program must get soon."""

    def __init__(self) -> None:
        self._pending = b""

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def flush(self) -> bytes:
        """What was held back, as typed."""
        pending, self._pending = self._pending, b""
        return pending

    def feed(self, data: bytes) -> tuple[bytes, list[Size]]:
        data, self._pending = self._pending + data, b""
        typed = bytearray()
        sizes: list[Size] = []
        start = 0
        for match in _RESIZE.finditer(data):
            typed += data[start : match.start()]
            rows, columns = int(match[1]), int(match[2])
            if rows and columns:
                sizes.append((rows, columns))
            start = match.end()
        rest = data[start:]
        partial = _PARTIAL.search(rest, max(0, len(rest) - 16))
        if partial is not None:
            rest, self._pending = rest[: partial.start()], rest[partial.start() :]
        return bytes(typed + rest), sizes
