"""What drains receive: RFC 5424 messages, octet-counted frames, Logplex's request head, L10/L14."""

import base64
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.drains import (
    PRI_APP,
    PRI_PLATFORM,
    PRI_ROUTER,
    certificate_error_notice,
    frames,
    logplex_request_head,
    octet_frame,
    overflow_notice,
    parse_drain_url,
    syslog_message,
)
from kapal.domain.logline import LogLine

TOKEN = "d.01234567-89ab-cdef-0123-456789abcdef"
WHEN = datetime(2026, 11, 27, 10, 40, 0, 123456, tzinfo=UTC).timestamp()


def line(message: str, source: str = "app", dyno: str = "web.1") -> LogLine:
    return LogLine("app-1", source, dyno, message, WHEN)


def parse_frames(data: bytes) -> list[bytes]:
    """Split an octet-counted stream as a receiver does; fails on any byte out of place."""
    messages = []
    while data:
        length, space, rest = data.partition(b" ")
        assert space and length.isdigit(), data[:40]
        size = int(length)
        assert len(rest) >= size
        messages.append(rest[:size])
        data = rest[size:]
    return messages


def test_an_app_line_is_an_rfc5424_message_named_by_the_drain_token() -> None:
    assert syslog_message(line("hello world"), TOKEN) == (
        f"<190>1 2026-11-27T10:40:00.123456+00:00 {TOKEN} app web.1 - hello world".encode()
    )


def test_priorities_are_local7_for_apps_local3_for_the_router_local0_for_the_rest() -> None:
    assert (PRI_APP, PRI_ROUTER, PRI_PLATFORM) == (190, 158, 134)
    assert syslog_message(line("x", "app", "api"), TOKEN).startswith(b"<190>1 ")
    router = syslog_message(line("at=info", "kapal", "router"), TOKEN)
    assert router.startswith(b"<158>1 ") and b" kapal router - at=info" in router
    assert syslog_message(line("State changed", "kapal", "web.1"), TOKEN).startswith(b"<134>1 ")


def test_the_frame_length_counts_utf8_bytes_not_characters() -> None:
    message = syslog_message(line("héllo ✓"), TOKEN)
    frame = octet_frame(message)
    assert frame == b"%d %b" % (len(message), message)
    assert len(message) > len(message.decode())
    assert parse_frames(frame) == [message]


def test_line_breaks_control_characters_and_lone_surrogates_stay_inside_their_frame() -> None:
    odd = ["two\nlines\r\n", "bell\x07 nul\x00 esc\x1b[31m", "lone \udcff surrogate", "", "7 <"]
    data = frames([line(message) for message in odd], TOKEN)
    parsed = parse_frames(data)
    assert len(parsed) == len(odd)
    assert parsed[0].endswith(b"- two\nlines\r\n")
    assert parsed[2].endswith(b"- lone ? surrogate")
    assert parsed[3].endswith(b" - ")


@given(st.lists(st.text(), max_size=20))
def test_any_messages_come_back_from_the_stream_in_order(messages: list[str]) -> None:
    data = frames([line(message) for message in messages], TOKEN)
    parsed = parse_frames(data)
    prefix = f"<190>1 2026-11-27T10:40:00.123456+00:00 {TOKEN} app web.1 - ".encode()
    assert [m.removeprefix(prefix) for m in parsed] == [
        m.encode("utf-8", "replace") for m in messages
    ]


def test_header_fields_that_rfc5424_forbids_are_made_printable() -> None:
    message = syslog_message(line("m", dyno="web 1\tü"), TOKEN).decode()
    assert message.split(" ")[4] == "web_1__"
    assert syslog_message(line("m", dyno=""), TOKEN).split(b" ")[4] == b"-"
    assert len(syslog_message(line("m", dyno="w" * 300), TOKEN).split(b" ")[4]) == 128


def test_a_time_no_timestamp_can_show_is_the_nil_value() -> None:
    message = syslog_message(LogLine("a", "app", "web.1", "m", float("nan")), TOKEN)
    assert message.split(b" ")[1] == b"-"


def test_the_logplex_request_head() -> None:
    url = parse_drain_url("https://user:p%40ss@logs.example.com:8443/drain/1?x=y")
    head = logplex_request_head(url, TOKEN, "f00d", 3, 456).decode()
    assert head.endswith("\r\n\r\n")
    request_line, *header_lines = head[:-4].split("\r\n")
    assert request_line == "POST /drain/1?x=y HTTP/1.1"
    headers = dict(header.split(": ", 1) for header in header_lines)
    assert headers == {
        "Host": "logs.example.com:8443",
        "Content-Type": "application/logplex-1",
        "Content-Length": "456",
        "Logplex-Msg-Count": "3",
        "Logplex-Frame-Id": "f00d",
        "Logplex-Drain-Token": TOKEN,
        "User-Agent": "Kapal-Logplex/1",
        "Authorization": "Basic " + base64.b64encode(b"user:p@ss").decode(),
    }


def test_a_request_head_without_credentials_path_or_port() -> None:
    head = logplex_request_head(parse_drain_url("https://logs.example.com"), TOKEN, "f", 1, 9)
    assert head.startswith(b"POST / HTTP/1.1\r\nHost: logs.example.com\r\n")
    assert b"Authorization" not in head
    v6 = logplex_request_head(parse_drain_url("http://[::1]:8080/x"), TOKEN, "f", 1, 9)
    assert b"\r\nHost: [::1]:8080\r\n" in v6


def test_the_l10_line() -> None:
    since = WHEN - 60
    notice = overflow_notice("app-1", 500, since, WHEN)
    assert notice == LogLine(
        "app-1",
        "kapal",
        "logplex",
        "Error L10 (output buffer overflow): 500 messages dropped since "
        "2026-11-27T10:39:00.123456+00:00.",
        WHEN,
    )


def test_the_l14_line_shows_no_password() -> None:
    url = parse_drain_url("https://u:secret@logs.example.com/x")
    notice = certificate_error_notice("app-1", 'self-signed "certificate"', url, WHEN)
    assert notice.source == "kapal" and notice.dyno == "logplex"
    assert notice.message == (
        "Error L14 (certificate validation error): error=\"self-signed 'certificate'\" "
        'uri="https://u:***@logs.example.com/x"'
    )
    tls = parse_drain_url("syslog+tls://logs.example.com:6514")
    assert re.search(
        r'uri="syslog\+tls://logs\.example\.com:6514"$',
        certificate_error_notice("a", "e", tls, WHEN).message,
    )


@given(st.floats(min_value=0, max_value=253402300799.999))
def test_the_fast_timestamp_is_the_one_log_lines_show(when: float) -> None:
    shown = LogLine("a", "app", "web.1", "m", when).format().split(" ")[0]
    assert syslog_message(LogLine("a", "app", "web.1", "m", when), TOKEN).split(b" ")[1] == (
        shown.encode()
    )


def test_timestamps_round_to_the_microsecond_as_datetime_does() -> None:
    for when in (0.0, 1.9999995, 1.0000005, 1795790400.9999999, 1795790399.9999996, 2.5e-7):
        expected = datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds")
        message = syslog_message(LogLine("a", "app", "w", "m", when), TOKEN)
        assert message.split(b" ")[1].decode() == expected
