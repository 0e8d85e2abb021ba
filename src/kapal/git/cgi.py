"""The head of a CGI response (`Status:` and headers, then a blank line): pure parsing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CgiHead:
    status: int
    headers: list[tuple[str, str]]


def split_head(data: bytes) -> tuple[CgiHead, bytes] | None:
    """The parsed head and the body bytes after it, or None while the head is incomplete."""
    lines: list[bytes] = []
    position = 0
    while True:
        newline = data.find(b"\n", position)
        if newline < 0:
            return None
        line = data[position:newline].rstrip(b"\r")
        position = newline + 1
        if not line:
            break
        lines.append(line)
    status = 200
    headers: list[tuple[str, str]] = []
    for raw in lines:
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise ValueError(f"malformed CGI header line: {raw!r}")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name, value))
    return CgiHead(status, headers), data[position:]
