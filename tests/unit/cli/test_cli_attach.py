from __future__ import annotations

import io
import socket
import threading

from hypothesis import given
from hypothesis import strategies as st

from kapal.cli.attach import pump, skip_greeting
from kapal.client.rendezvous import ExitStatusFilter
from kapal.domain.rendezvous import EOT

MARK = "\uffff kapal-command-exit-status: ".encode()


def run_filter(chunks: list[bytes]) -> tuple[bytes, int | None]:
    f = ExitStatusFilter()
    out = b"".join(f.feed(c) for c in chunks) + f.finish()
    return out, f.status


def test_marker_line_is_stripped_and_read() -> None:
    assert run_filter([b"hello\n" + MARK + b"3\n"]) == (b"hello\n", 3)


def test_marker_after_output_without_newline() -> None:
    assert run_filter([b"no newline" + MARK + b"0\n"]) == (b"no newline", 0)


def test_no_marker_means_no_status() -> None:
    assert run_filter([b"partial \xef\xbf", b"x\n"]) == (b"partial \xef\xbfx\n", None)


def test_unterminated_marker_at_close_still_counts() -> None:
    assert run_filter([b"out\n" + MARK + b"42"]) == (b"out\n", 42)


def test_ordinary_output_is_not_held_back() -> None:
    f = ExitStatusFilter()
    assert f.feed(b"prompt $ ") == b"prompt $ "


@given(
    output=st.binary(max_size=200).filter(lambda b: MARK not in b),
    status=st.integers(0, 255),
    cuts=st.lists(st.integers(0, 300), max_size=8),
)
def test_any_split_of_the_stream_gives_the_same_result(
    output: bytes, status: int, cuts: list[int]
) -> None:
    stream = output + MARK + str(status).encode() + b"\n"
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert run_filter(chunks) == (output, status)


def test_skip_greeting_keeps_what_follows() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"rendez")
        a.sendall(b"vous\r\nfirst output")
        assert skip_greeting(b) == b"first output"


def test_skip_greeting_on_early_close() -> None:
    a, b = socket.socketpair()
    with b:
        a.sendall(b"no newline")
        a.close()
        assert skip_greeting(b) is None


def test_pump_copies_both_ways_and_sends_eot_at_end_of_stdin() -> None:
    ours, dyno = socket.socketpair()
    received = bytearray()

    def dyno_side() -> None:
        with dyno:
            while EOT not in received:
                chunk = dyno.recv(1024)
                if not chunk:
                    break
                received.extend(chunk)
            dyno.sendall(b"got it\n" + MARK + b"7\n")

    thread = threading.Thread(target=dyno_side)
    thread.start()
    stdout = io.BytesIO()
    with ours:
        status = pump(ours, b"early ", io.BytesIO(b"line one\nline two\n"), stdout)
    thread.join()
    assert bytes(received) == b"line one\nline two\n" + EOT
    assert stdout.getvalue() == b"early got it\n"
    assert status == 7
