"""The router's own responses: error pages as complete, pre-encoded HTTP responses."""

from __future__ import annotations

import re
from importlib import resources
from string import Template

from kapal.router.codes import RouterError

_REASONS = {
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    417: b"Expectation Failed",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
}


def load_page(stem: str) -> bytes:
    """A page: its fragment (starting with an <h1>, which is also the title) in the layout."""
    folder = resources.files("kapal.router").joinpath("pages")
    content = folder.joinpath(f"{stem}.html").read_text(encoding="utf-8").strip()
    title = re.sub(r"<[^>]+>", "", content.partition("</h1>")[0])
    layout = Template(folder.joinpath("layout.html").read_text(encoding="utf-8"))
    return layout.substitute(title=title, content=content).encode()


class ErrorPages:
    """Builds each error response once per (error, close, HEAD) and reuses the bytes."""

    def __init__(self) -> None:
        self._bodies: dict[str, bytes] = {}
        self._cache: dict[tuple[RouterError, bool, bool], tuple[bytes, int]] = {}

    def response(self, error: RouterError, *, close: bool, head: bool) -> tuple[bytes, int]:
        """The full response and the number of body bytes in it."""
        key = (error, close, head)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._build(error, close=close, head=head)
        return cached

    def _build(self, error: RouterError, *, close: bool, head: bool) -> tuple[bytes, int]:
        body = self._body(error.page)
        reason = _REASONS.get(error.status, b"Error")
        lines = [
            b"HTTP/1.1 %d %s\r\n" % (error.status, reason),
            b"Content-Type: text/html; charset=utf-8\r\n",
            b"Content-Length: %d\r\n" % len(body),
            b"Cache-Control: no-cache, no-store\r\n",
        ]
        if close:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        if head:
            return b"".join(lines), 0
        return b"".join(lines) + body, len(body)

    def _body(self, stem: str) -> bytes:
        if not stem:
            return b""
        body = self._bodies.get(stem)
        if body is None:
            body = self._bodies[stem] = load_page(stem)
        return body
