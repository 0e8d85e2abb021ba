import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.router.codes import (
    BAD_REQUEST,
    H10,
    H12,
    H14,
    H80,
    H81,
    HEADER_TOO_LARGE,
    NO_SUCH_APP,
    RouterError,
)
from kapal.router.pages import ErrorPages, custom_url, escape, framed_page, load_page
from kapal.router.routes import AppRoute


def split(response: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.lower(): v for k, v in (line.split(b": ", 1) for line in lines)}
    return status, headers, body


@pytest.mark.parametrize(
    "error", [NO_SUCH_APP, H10, H12, H14, H80, H81, BAD_REQUEST, HEADER_TOO_LARGE]
)
def test_error_responses_are_complete_html_responses(error: object) -> None:
    pages = ErrorPages()
    response, nbytes = pages.response(error, close=False, head=False)  # type: ignore[arg-type]
    status, headers, body = split(response)
    assert status.startswith(b"HTTP/1.1 %d " % error.status)  # type: ignore[attr-defined]
    assert int(headers[b"content-length"]) == len(body) == nbytes > 0
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert b"connection" not in headers
    assert body.startswith(b"<!DOCTYPE html>")


def test_close_and_head_variants() -> None:
    pages = ErrorPages()
    full, _ = pages.response(H14, close=True, head=False)
    head_only, nbytes = pages.response(H14, close=True, head=True)
    assert split(full)[1][b"connection"] == b"close"
    assert nbytes == 0
    assert head_only == full[: full.index(b"\r\n\r\n") + 4]
    assert pages.response(H14, close=True, head=False)[0] is full  # built once


def test_page_words() -> None:
    assert b"kapal logs --tail" in load_page("application-error")
    assert b"git push" in load_page("blank-app")
    assert b"maintenance" in load_page("maintenance")
    assert b"No such app" in load_page("no-such-app")


ERROR_URL = "https://pages.example.com/oops.html?app=demo&lang=en"
DOWN_URL = "http://pages.example.com/down.html"
CUSTOM = AppRoute(
    "app-1", "demo", error_page_url=ERROR_URL, maintenance_page_url=DOWN_URL, web_quantity=1
)


def iframe_src(body: bytes) -> str:
    """The iframe's src as a browser reads it (entities decoded)."""
    found = re.search(rb'<iframe src="([^"]*)"', body)
    assert found is not None, body
    return html.unescape(found.group(1).decode())


@pytest.mark.parametrize(
    ("error", "url", "title"),
    [
        (H10, ERROR_URL, b"Application error"),
        (H12, ERROR_URL, b"Application error"),
        (H14, ERROR_URL, b"Application error"),
        (H80, DOWN_URL, b"Down for maintenance"),
    ],
)
def test_an_apps_own_page_is_shown_full_window_with_the_status_unchanged(
    error: RouterError, url: str, title: bytes
) -> None:
    response, nbytes = ErrorPages().response(error, close=False, head=False, route=CUSTOM)
    status, headers, body = split(response)
    assert status.startswith(b"HTTP/1.1 503 ")
    assert int(headers[b"content-length"]) == len(body) == nbytes
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert body.startswith(b"<!DOCTYPE html>")
    assert iframe_src(body) == url
    assert b"<title>" + title + b"</title>" in body
    assert b"height:100%" in body
    assert b"kapal logs" not in body  # none of the router's own page


@pytest.mark.parametrize("error", [H81, NO_SUCH_APP, BAD_REQUEST])
def test_other_pages_stay_the_routers(error: RouterError) -> None:
    pages = ErrorPages()
    assert pages.response(error, close=False, head=False, route=CUSTOM) == pages.response(
        error, close=False, head=False
    )
    assert custom_url(error, CUSTOM) == ""


def test_without_urls_the_routers_pages_are_served() -> None:
    pages = ErrorPages()
    plain = AppRoute("app-2", "plain", maintenance=True)
    assert pages.response(H80, close=False, head=False, route=plain) == pages.response(
        H80, close=False, head=False
    )
    assert custom_url(H10, None) == ""


def test_the_url_is_escaped_so_it_cannot_break_out_of_the_attribute() -> None:
    url = "https://evil.example.com/\"><script>alert('x')</script>&a=1"
    body = framed_page("application-error", url)
    assert b"<script>" not in body
    assert b'"><script' not in body
    assert iframe_src(body) == url
    assert body.count(b"<iframe") == 1


@given(st.text())
def test_escaping_is_the_standard_librarys(text: str) -> None:
    assert escape(text) == html.escape(text, quote=True)


def test_custom_responses_are_cached_per_url() -> None:
    pages = ErrorPages()
    first, _ = pages.response(H10, close=True, head=False, route=CUSTOM)
    assert pages.response(H10, close=True, head=False, route=CUSTOM)[0] is first
    other = AppRoute("app-3", "other", error_page_url="https://other.example.com/")
    second, _ = pages.response(H10, close=True, head=False, route=other)
    assert iframe_src(split(second)[2]) == "https://other.example.com/"
    head_only, nbytes = pages.response(H10, close=True, head=True, route=other)
    assert nbytes == 0 and head_only == second[: second.index(b"\r\n\r\n") + 4]
