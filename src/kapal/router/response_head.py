"""The response head as it goes to the client: hop-by-hop headers out, the router's Connection
and Via in. The body after the head is passed through untouched."""

from __future__ import annotations

import re
from typing import Final

from kapal.router.request_head import VIA

# A header line (with any obs-fold continuation lines) that only concerns the dyno's hop.
_HOP_BY_HOP: Final = re.compile(
    rb"\r\n(?:connection|keep-alive|proxy-connection|te|upgrade)[ \t]*:[^\r\n]*"
    rb"(?:\r\n[ \t][^\r\n]*)*",
    re.IGNORECASE,
)
_CONNECTION: Final = re.compile(rb"\r\nconnection[ \t]*:([^\r\n]*)", re.IGNORECASE)
_CONTENT_LENGTH: Final = re.compile(rb"\r\ncontent-length[ \t]*:", re.IGNORECASE)
_TRANSFER_ENCODING: Final = re.compile(rb"\r\ntransfer-encoding[ \t]*:([^\r\n]*)", re.IGNORECASE)
_OPTIONS: Final = frozenset({b"", b"close", b"keep-alive", b"upgrade"})
_PROTECTED: Final = frozenset({b"content-length", b"transfer-encoding"})

CLOSE: Final = b"Connection: close\r\n"
KEEP_ALIVE: Final = b"Connection: keep-alive\r\n"  # for HTTP/1.0 clients


def rewrite_response_head(head: bytes, connection: bytes) -> bytes:
    """`head` is the dyno's status line and headers through the blank line; `connection` is
    b"", CLOSE or KEEP_ALIVE. The status line is answered as HTTP/1.1, the router's version."""
    eol = head.find(b"\r\n")
    fields = head[eol:-4]
    found = _HOP_BY_HOP.search(fields)  # one scan in the common case: none there
    if found is not None:
        if _HOP_BY_HOP.search(fields, found.end()) is None and _names_none(found.group()):
            # The next most common case: one `Connection: keep-alive` (or close), cut out.
            fields = fields[: found.start()] + fields[found.end() :]
        else:
            if _CONNECTION.search(fields) is not None:
                fields = _drop_listed(fields)
            fields = _HOP_BY_HOP.sub(b"", fields)
    return b"".join((b"HTTP/1.1", head[8:eol], fields, b"\r\n", connection, VIA, b"\r\n"))


def rewrite_upgrade_head(head: bytes) -> bytes:
    """A 101 Switching Protocols head keeps its Connection and Upgrade headers."""
    return b"".join((b"HTTP/1.1", head[8:-2], VIA, b"\r\n"))


def body_is_framed(head: bytes) -> bool:
    """True if the body's end is marked (Content-Length or chunked), False if it ends at EOF."""
    codings: list[bytes] = _TRANSFER_ENCODING.findall(head)
    if codings:
        return codings[-1].rsplit(b",", 1)[-1].strip().lower() == b"chunked"
    return _CONTENT_LENGTH.search(head) is not None


def _names_none(line: bytes) -> bool:
    """True unless `line`, a hop-by-hop header line, is a Connection header naming headers."""
    name, _, value = line.partition(b":")
    return name[2:].rstrip().lower() != b"connection" or value.strip().lower() in _OPTIONS


def _drop_listed(fields: bytes) -> bytes:
    names: set[bytes] = set()
    for value in _CONNECTION.findall(fields):
        names.update(token.strip().lower() for token in value.split(b","))
    names -= _OPTIONS
    names -= _PROTECTED
    if not names:
        return fields
    listed = re.compile(
        rb"\r\n(?:" + b"|".join(re.escape(name) for name in sorted(names)) + rb")[ \t]*:[^\r\n]*",
        re.IGNORECASE,
    )
    return listed.sub(b"", fields)
