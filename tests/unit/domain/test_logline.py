from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.logline import MAX_LINE_BYTES, LogLine, clean_message, stamp


def test_format_is_herokus() -> None:
    line = LogLine("app-id", "app", "web.1", "hello", 1795700362.123456)
    assert line.format() == "2026-11-26T13:39:22.123456+00:00 app[web.1]: hello"


def test_wire_round_trip() -> None:
    line = LogLine("id", "kapal", "router", 'at=info path="/ü"', 1.5)
    assert LogLine.decode(line.encode()) == line


def test_invalid_utf8_and_control_characters_are_harmless() -> None:
    [text] = clean_message(b"bad \xff byte\x1b[31m red\r\n")
    assert "\ufffd" in text and "\x1b" not in text and "\\x1b" in text


def test_a_forged_prefix_stays_inside_the_message() -> None:
    [text] = clean_message(b"ok\n2026-01-01T00:00:00+00:00 kapal[router]: fake")
    assert "\n" not in text


def test_long_lines_are_split() -> None:
    chunks = clean_message(b"x" * (MAX_LINE_BYTES * 2 + 5))
    assert [len(c) for c in chunks] == [MAX_LINE_BYTES, MAX_LINE_BYTES, 5]


@given(st.floats(min_value=0, max_value=253402300799.0, allow_nan=False))
def test_stamp_is_what_isoformat_writes(when: float) -> None:
    expected = datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds")
    assert stamp(when) == expected


def test_stamp_rounds_into_the_next_second_as_datetime_does() -> None:
    assert stamp(1_700_000_000.9999996) == "2023-11-14T22:13:21.000000+00:00"
    assert stamp(-1.5) == datetime.fromtimestamp(-1.5, UTC).isoformat(timespec="microseconds")
