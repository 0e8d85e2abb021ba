import pytest

from kapal.router.codes import BAD_REQUEST, H10, H12, H14, H80, H81, HEADER_TOO_LARGE, NO_SUCH_APP
from kapal.router.pages import ErrorPages, load_page


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
