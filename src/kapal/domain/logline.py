"""One log line of an app's stream, its wire form between processes, and its display form."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring as _string  # JSON string, non-ASCII kept

SOURCES = ("app", "kapal")
_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps builds one per call
MAX_LINE_BYTES = 10_000
_LATEST = 253402300800.0  # 10000-01-01T00:00:00Z: no timestamp shows this or later


def stamp(when: float) -> str:
    """`2026-11-26T13:39:22.123456+00:00`, as datetime's isoformat() writes it, for less: every
    line is stamped, and the lines of one second share all but the microseconds.
    ValueError/OverflowError/OSError for a time no timestamp can show."""
    if not 0 <= when < _LATEST:
        return datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds")
    whole = int(when)
    # As datetime.fromtimestamp rounds: the fraction (exact), in microseconds, half to even.
    micro = round((when - whole) * 1e6)
    if micro == 1_000_000:
        whole, micro = whole + 1, 0
    return f"{_second(whole)}.{micro:06d}+00:00"


@lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True, slots=True)
class LogLine:
    app_id: str
    source: str  # "app" (dyno output and app[api] events) or "kapal" (router, dyno lifecycle)
    dyno: str  # web.1, router, api, release.3 ...
    message: str
    time: float  # unix seconds

    def format(self) -> str:
        """`2026-11-26T13:39:22.123456+00:00 app[web.1]: message`."""
        return f"{stamp(self.time)} {self.source}[{self.dyno}]: {self.message}"

    def encode(self) -> bytes:
        # The JSON array written by hand: the router encodes one line per request, and the
        # encoder's general machinery costs twice as much. Same JSON as _ENCODER writes.
        time = self.time
        stamp = repr(time) if type(time) is float and math.isfinite(time) else _ENCODER.encode(time)
        text = _string
        return (
            f"[{text(self.app_id)}, {text(self.source)}, {text(self.dyno)}, "
            f"{text(self.message)}, {stamp}]"
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> LogLine:
        app_id, source, dyno, message, time = json.loads(data.decode("utf-8", "replace"))
        return cls(str(app_id), str(source), str(dyno), str(message), float(time))


def clean_message(raw: bytes) -> list[str]:
    """Decode one line of dyno output: invalid UTF-8 replaced, control characters made visible,
    split into chunks of at most MAX_LINE_BYTES bytes."""
    text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
    text = "".join(ch if ch == "\t" or ch >= " " else f"\\x{ord(ch):02x}" for ch in text)
    encoded = text.encode()
    if len(encoded) <= MAX_LINE_BYTES:
        return [text]
    return [
        encoded[i : i + MAX_LINE_BYTES].decode("utf-8", "ignore")
        for i in range(0, len(encoded), MAX_LINE_BYTES)
    ]
