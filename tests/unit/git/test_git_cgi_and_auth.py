from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.git.cgi import CgiHead, split_head
from kapal.git.http import basic_password, internal_api_url, smart_service
from kapal.settings import Settings


def test_head_without_status_is_200_and_the_rest_is_body() -> None:
    data = b"Expires: never\r\nContent-Type: application/x-git-receive-pack-result\r\n\r\n0008NAK"
    parsed = split_head(data)
    assert parsed is not None
    head, rest = parsed
    assert head == CgiHead(
        200,
        [("Expires", "never"), ("Content-Type", "application/x-git-receive-pack-result")],
    )
    assert rest == b"0008NAK"


def test_status_header_sets_the_code() -> None:
    parsed = split_head(b"Status: 403 Forbidden\nContent-Type: text/plain\n\nno")
    assert parsed is not None
    assert parsed[0].status == 403
    assert parsed[0].headers == [("Content-Type", "text/plain")]
    assert parsed[1] == b"no"


def test_incomplete_head_waits_for_more() -> None:
    assert split_head(b"Content-Type: text/plain\r\n") is None


def test_malformed_head_is_an_error() -> None:
    with pytest.raises(ValueError):
        split_head(b"garbage\r\n\r\n")


header_names = st.from_regex(r"[A-Z][a-z]{1,10}(-[A-Z][a-z]{1,10})?", fullmatch=True).filter(
    lambda n: n.lower() != "status"
)
header_values = st.from_regex(r"[ -~]{0,30}", fullmatch=True).map(str.strip)


@given(st.lists(st.tuples(header_names, header_values), max_size=6), st.binary(max_size=50))
def test_heads_round_trip(headers: list[tuple[str, str]], body: bytes) -> None:
    raw = b"".join(f"{n}: {v}\r\n".encode() for n, v in headers) + b"\r\n" + body
    assert split_head(raw) == (CgiHead(200, headers), body)


def test_only_smart_http_requests_are_served() -> None:
    assert smart_service("GET", "info/refs", "git-receive-pack") == "git-receive-pack"
    assert smart_service("GET", "info/refs", "git-upload-pack") == "git-upload-pack"
    assert smart_service("POST", "git-receive-pack", None) == "git-receive-pack"
    assert smart_service("GET", "info/refs", None) is None  # dumb HTTP
    assert smart_service("GET", "HEAD", None) is None
    assert smart_service("GET", "objects/info/packs", None) is None
    assert smart_service("POST", "info/refs", None) is None
    assert smart_service("GET", "info/refs", "git-shell") is None


def test_basic_password_is_the_token() -> None:
    def basic(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert basic_password(basic("anything:tok-en_1")) == "tok-en_1"
    assert basic_password(basic(":tok")) == "tok"
    assert basic_password(basic("user:")) is None
    assert basic_password(basic("no-colon")) is None
    assert basic_password("Bearer tok") is None
    assert basic_password("Basic !!!") is None
    assert basic_password(None) is None


def test_the_hook_reaches_the_api_on_loopback() -> None:
    settings = Settings(data_dir=Path("/nonexistent"), api_port=5123)
    assert internal_api_url(settings) == "http://127.0.0.1:5123"
    anywhere = Settings(data_dir=Path("/nonexistent"), api_port=5123, bind="0.0.0.0")
    assert internal_api_url(anywhere) == "http://127.0.0.1:5123"
    v6 = Settings(data_dir=Path("/nonexistent"), api_port=5123, bind="::1")
    assert internal_api_url(v6) == "http://[::1]:5123"
