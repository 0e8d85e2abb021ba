from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.errors import InvalidParams
from kapal.domain.rendezvous import (
    Launch,
    ResizeFilter,
    Size,
    attach_secret,
    launch_of,
    parse_secret_line,
    resize_sequence,
    secret_line,
    status_trailer,
    terminal_size,
)


def test_secret_line_round_trip() -> None:
    assert secret_line("abc") == b"abc\r\n"
    assert secret_line("abc", exit_status=True) == b"abc exit-status\r\n"
    assert parse_secret_line(b"abc exit-status\r\n") == ("abc", frozenset({"exit-status"}))
    # Heroku's CLI sends the URL's path, which may keep its slash.
    assert parse_secret_line(b"/abc\r\n") == ("abc", frozenset())
    assert parse_secret_line(b"\r\n") == ("", frozenset())


def test_status_trailer() -> None:
    assert status_trailer(5) == "\uffff kapal-command-exit-status: 5\n".encode()


def test_a_plain_token_launches_with_pipes_and_no_env() -> None:
    assert attach_secret("tok", Launch()) == "tok"
    assert launch_of("tok") == Launch()


def test_launch_options_round_trip() -> None:
    launch = Launch((30, 100), {"TERM": "xterm", "MOTD": "héllo; = world."})
    secret = attach_secret("tok-en_1", launch)
    assert secret.startswith("tok-en_1.")
    assert "=" not in secret and "/" not in secret and " " not in secret  # one URL path word
    assert launch_of(secret) == launch
    assert launch_of(attach_secret("tok", Launch(None, {"A": "1"}))) == Launch(None, {"A": "1"})


@pytest.mark.parametrize("payload", ["!!!", "bm90IGpzb24", "WzFd", "eyJ0dHkiOiJ4In0"])
def test_unreadable_launch_options(payload: str) -> None:
    with pytest.raises(ValueError, match="launch options"):
        launch_of(f"tok.{payload}")


def test_terminal_size_from_heroku_env() -> None:
    assert terminal_size({}) == (24, 80)
    assert terminal_size({"LINES": "30", "COLUMNS": "100"}) == (30, 100)
    with pytest.raises(InvalidParams, match="LINES and COLUMNS must be whole numbers"):
        terminal_size({"COLUMNS": "wide"})
    # A terminal that does not know its size (`script`, a bare pty) reports 0 x 0.
    assert terminal_size({"LINES": "0", "COLUMNS": "0"}) == (24, 80)
    assert terminal_size({"LINES": "0", "COLUMNS": "132"}) == (24, 132)
    for bad in ({"LINES": "-1"}, {"COLUMNS": "10000"}):
        with pytest.raises(InvalidParams):
            terminal_size(bad)


def test_resizes_are_taken_out_of_what_is_typed() -> None:
    typed = ResizeFilter()
    assert typed.feed(b"ls\r" + resize_sequence((40, 120)) + b"\x03") == (b"ls\r\x03", [(40, 120)])
    assert typed.feed(b"\x1b[8;0;0t") == (b"", [])  # not a size: dropped all the same


def test_only_the_start_of_a_resize_is_held_back() -> None:
    typed = ResizeFilter()
    assert typed.feed(b"\x1b[A") == (b"\x1b[A", [])  # an arrow key
    assert typed.feed(b"\x1b[8;24") == (b"", [])  # the start of a resize waits for its end
    assert typed.pending
    assert typed.feed(b";80t") == (b"", [(24, 80)])
    assert typed.feed(b"\x1b") == (b"", [])  # the Escape key, or the start of a resize
    assert typed.flush() == b"\x1b"  # the client paused: it was the Escape key
    assert not typed.pending
    assert typed.feed(b"\x1b[B") == (b"\x1b[B", [])


sizes = st.tuples(st.integers(1, 9999), st.integers(1, 9999))
# Without ";", keys never complete a resize sequence, even next to one.
keys = st.binary(max_size=40).map(lambda b: b.replace(b";", b""))


@given(
    pieces=st.lists(st.one_of(keys, sizes), max_size=6),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_any_split_gives_the_same_keys_and_resizes(
    pieces: list[bytes | Size], cuts: list[int]
) -> None:
    stream = b"".join(p if isinstance(p, bytes) else resize_sequence(p) for p in pieces)
    expected_keys = b"".join(p for p in pieces if isinstance(p, bytes))
    expected_sizes = [p for p in pieces if not isinstance(p, bytes)]
    points = sorted({min(c, len(stream)) for c in cuts})
    typed = ResizeFilter()
    got_keys, got_sizes = b"", []
    for a, b in zip([0, *points], [*points, len(stream)], strict=True):
        out, found = typed.feed(stream[a:b])
        got_keys += out
        got_sizes += found
    # What ends like the start of a resize is held back, not lost.
    assert (got_keys + typed.flush(), got_sizes) == (expected_keys, expected_sizes)
