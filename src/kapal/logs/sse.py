"""Server-Sent Events framing (the WHATWG `text/event-stream` format), pure."""

from __future__ import annotations

import re

# SSE treats CR, LF and CRLF alike as line ends; a message line holding one needs a new field.
_LINE_END = re.compile(r"\r\n|\r|\n")


def sse_event(data: str, event_id: int | None = None) -> str:
    """One message event; an event without an id leaves the client's Last-Event-ID as it was."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    if "\n" not in data and "\r" not in data:  # a log line, nearly always
        return f"{head}data: {data}\n\n"
    body = "".join(f"data: {part}\n" for part in _LINE_END.split(data))
    return f"{head}{body}\n"


def sse_comment(text: str) -> str:
    """A comment: ignored by clients, keeps proxies and idle timeouts from closing the stream."""
    return f": {_LINE_END.sub(' ', text)}\n\n"
