from collections.abc import AsyncGenerator

import pytest

from kapal.logs.http import Response, parse_head, response_head, text


def test_parse_head_lowercases_names_and_decodes_the_path() -> None:
    request = parse_head(
        b"GET /sessions/a%2Db?tail=true HTTP/1.1\r\nHost: x\r\nAccept:  text/event-stream \r\n"
    )
    assert request.method == "GET"
    assert request.path == "/sessions/a-b"
    assert request.headers == {"host": "x", "accept": "text/event-stream"}


@pytest.mark.parametrize(
    "head",
    [b"GET /", b"GET / SPDY/3", b"GET / HTTP/1.1\r\nno colon", b"GET / HTTP/1.1\r\n Host: x"],
)
def test_parse_head_rejects_what_is_not_http_1(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_head(head)


def test_a_text_response_has_a_length_and_a_stream_is_chunked() -> None:
    assert response_head(text(404, "gone\n")) == (
        b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 5\r\nconnection: close\r\n\r\n"
    )

    async def body() -> AsyncGenerator[str, None]:
        yield "x"

    stream = Response(200, "text/event-stream", body(), {"cache-control": "no-cache"})
    assert response_head(stream) == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
    )
