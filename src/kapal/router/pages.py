"""The router's own responses: error pages as complete, pre-encoded HTTP responses, or, for
an app that names its own error or maintenance page, a page that shows that URL."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from kapal.router.codes import RouterError
from kapal.router.routes import AppRoute

_REASONS = {
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    417: b"Expectation Failed",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
}
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;"))
MAX_CACHED = 4096  # responses kept; apps' page URLs change, so the cache starts afresh beyond


# Beside this module; not through importlib.resources, which (with tempfile, shutil...) would
# cost each router process most of a megabyte.
FOLDER = Path(__file__).with_name("pages")


def _fragment(stem: str) -> tuple[str, str]:
    """A page's fragment (starting with an <h1>) and its title (the <h1>'s text)."""
    content = (FOLDER / f"{stem}.html").read_text(encoding="utf-8").strip()
    return content, re.sub(r"<[^>]+>", "", content.partition("</h1>")[0])


def load_page(stem: str) -> bytes:
    """A page: its fragment (starting with an <h1>, which is also the title) in the layout."""
    content, title = _fragment(stem)
    layout = Template((FOLDER / "layout.html").read_text(encoding="utf-8"))
    return layout.substitute(title=title, content=content).encode()


def framed_page(stem: str, url: str) -> bytes:
    """The app's own page at `url` in a full-window iframe, titled like the router's page
    `stem` (as Heroku does with ERROR_PAGE_URL and MAINTENANCE_PAGE_URL)."""
    _, title = _fragment(stem)
    frame = Template((FOLDER / "framed.html").read_text(encoding="utf-8"))
    return frame.substitute(title=title, url=escape(url)).encode()


def escape(text: str) -> str:
    """`text` for an HTML attribute value, as html.escape(text, quote=True) makes it (the html
    module, with its table of entities, would cost each router process half a megabyte)."""
    for char, entity in _ENTITIES:
        text = text.replace(char, entity)
    return text


def custom_url(error: RouterError, route: AppRoute | None) -> str:
    """The URL of the app's own page for `error`, or "" for the router's."""
    if route is None:
        return ""
    if error.page == "application-error":
        return route.error_page_url
    if error.page == "maintenance":
        return route.maintenance_page_url
    return ""


class ErrorPages:
    """Builds each error response once per (error, close, HEAD, the app's page URL) and
    reuses the bytes."""

    def __init__(self) -> None:
        self._bodies: dict[tuple[str, str], bytes] = {}
        self._cache: dict[tuple[RouterError, bool, bool, str], tuple[bytes, int]] = {}

    def response(
        self, error: RouterError, *, close: bool, head: bool, route: AppRoute | None = None
    ) -> tuple[bytes, int]:
        """The full response and the number of body bytes in it; `route` is the app's,
        whose own error or maintenance page replaces the router's."""
        url = custom_url(error, route) if route is not None else ""
        key = (error, close, head, url)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
                self._bodies.clear()
            cached = self._cache[key] = self._build(error, url, close=close, head=head)
        return cached

    def _build(self, error: RouterError, url: str, *, close: bool, head: bool) -> tuple[bytes, int]:
        body = self._body(error.page, url)
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

    def _body(self, stem: str, url: str) -> bytes:
        if not stem:
            return b""
        body = self._bodies.get((stem, url))
        if body is None:
            body = framed_page(stem, url) if url else load_page(stem)
            self._bodies[stem, url] = body
        return body
