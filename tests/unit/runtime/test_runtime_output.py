"""Reading dyno output: chunks into lines, a bounded backlog that drops and counts (L12)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.logline import MAX_LINE_BYTES, LogLine, clean_message
from kapal.runtime.output import (
    MAX_AGE,
    NOTICE_EVERY,
    Backlog,
    Dropped,
    DynoLog,
    TailBuffer,
    overflow_notice,
    read_output,
)

T0 = 1795776000.123456  # 2026-11-27T10:40:00.123456+00:00
UNBOUNDED = 1 << 40


class Clock:
    """Time as a test sets it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def taken(backlog: Backlog, budget: int = UNBOUNDED) -> list[bytes | Dropped]:
    return backlog.take(budget)


def lines_of(chunks: list[bytes], limit: int = UNBOUNDED) -> list[bytes | Dropped]:
    backlog = Backlog(limit, clock=lambda: T0)
    for chunk in chunks:
        backlog.feed(chunk)
    backlog.end()
    return taken(backlog)


class Sink:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def append(self, line: LogLine) -> None:
        self.lines.append(line)


def messages_of(chunks: list[bytes]) -> list[str]:
    """What reaches the log for output written in these chunks (nothing dropped)."""
    sink = Sink()
    log = DynoLog(sink, "app-id", "web.1", clock=lambda: T0)
    for item in lines_of(chunks):
        assert isinstance(item, bytes)
        log.output(item)
    return [line.message for line in sink.lines]


# Chunks into lines.


def test_lines_split_across_chunks_are_joined() -> None:
    assert lines_of([b"one\ntw", b"o\nthr", b"ee", b"\n"]) == [b"one", b"two", b"three"]


def test_a_partial_last_line_comes_out_at_eof_only() -> None:
    backlog = Backlog(clock=lambda: T0)
    backlog.feed(b"one\ntwo")
    assert taken(backlog) == [b"one"]
    assert not backlog.finished
    backlog.end()
    assert taken(backlog) == [b"two"]
    assert backlog.finished


def test_crlf_line_ends_and_empty_lines() -> None:
    assert messages_of([b"a\r\n\r\nb\r", b"\n\n"]) == ["a", "", "b", ""]


def test_invalid_utf8_is_replaced_and_control_characters_made_visible() -> None:
    assert messages_of([b"caf\xc3\xa9 \xff\x1b[1m bold\tx\n"]) == ["café \ufffd\\x1b[1m bold\tx"]


def test_a_long_line_comes_out_in_pieces_as_it_arrives() -> None:
    backlog = Backlog(clock=lambda: T0)
    backlog.feed(b"x" * 25_000)
    assert taken(backlog) == [b"x" * MAX_LINE_BYTES] * 2  # the rest waits for its newline
    backlog.feed(b"x\nnext\n")
    assert taken(backlog) == [b"x" * 5_001, b"next"]


def test_long_lines_make_10000_byte_messages_however_they_arrive() -> None:
    line = b"y" * 25_000 + b"\n"
    expected = ["y" * 10_000, "y" * 10_000, "y" * 5_000]
    assert messages_of([line]) == expected
    assert messages_of([line[i : i + 4096] for i in range(0, len(line), 4096)]) == expected


def test_a_piece_never_cuts_a_utf8_character() -> None:
    line = ("a" * 9_999 + "é" * 10).encode() + b"\n"  # é is 2 bytes: one straddles 10,000
    backlog = Backlog(clock=lambda: T0)
    backlog.feed(line[:-1])
    pieces = taken(backlog)
    assert pieces == [b"a" * 9_999]
    backlog.feed(b"\n")
    assert taken(backlog) == [("é" * 10).encode()]


def test_the_budget_stops_a_turn_and_the_rest_waits() -> None:
    backlog = Backlog(clock=lambda: T0)
    backlog.feed(b"".join(b"%05d\n" % i for i in range(10_000)))  # 60,000 bytes
    first = taken(backlog, 30_000)
    assert first == [b"%05d" % i for i in range(len(first))]
    assert 30_000 <= 6 * len(first) <= 30_000 + MAX_LINE_BYTES
    rest = taken(backlog)
    assert rest == [b"%05d" % i for i in range(len(first), 10_000)]


@given(
    st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=25_000)),
    st.lists(st.integers(1, 30_000), max_size=40),
)
def test_any_chunking_gives_what_each_line_would_alone(lines: list[str], cuts: list[int]) -> None:
    data = b"".join(line.encode() + b"\n" for line in lines)
    chunks, start = [], 0
    for size in cuts:
        chunks.append(data[start : start + size])
        start += size
    chunks.append(data[start:])
    expected = [message for line in lines for message in clean_message(line.encode())]
    assert messages_of([chunk for chunk in chunks if chunk]) == expected


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_dyno_output_is_cleaned_as_clean_message_does(raw: bytes) -> None:
    sink = Sink()
    DynoLog(sink, "app-id", "web.1", clock=lambda: T0).output(raw)
    assert [line.message for line in sink.lines] == clean_message(raw)


# A full backlog drops and counts.


def test_overflow_notice_is_heroku_l12() -> None:
    assert overflow_notice("web.1", 42, T0) == (
        "Error L12 (Local buffer overflow) -> web.1 dropped 42 lines since "
        "2026-11-27T10:40:00.123456+00:00"
    )


def test_a_full_backlog_drops_whole_lines_and_says_where() -> None:
    clock = Clock()
    backlog = Backlog(limit=8, clock=clock)
    backlog.feed(b"l1\nl2\nl3\np")  # over the limit: what comes next is dropped
    backlog.feed(b"art\nx1\n")  # p-art (its start goes too) and x1
    clock.now = T0 + 0.01  # lines went missing since the first of them
    backlog.feed(b"x2\nsta")  # x2, and the start of a line...
    backlog.feed(b"rted then dropped\n")  # ...whose rest goes too
    assert taken(backlog) == [b"l1", b"l2", b"l3", Dropped(4, T0)]
    backlog.feed(b"n1\nn2\n")  # room again
    backlog.end()
    assert taken(backlog) == [b"n1", b"n2"]
    assert backlog.finished


def test_each_gap_is_counted_where_it_is() -> None:
    long = [bytes([ord("a") + i]) * 9_999 + b"\n" for i in range(4)]  # 10,000 bytes each
    backlog = Backlog(limit=30_000, clock=lambda: T0)
    backlog.feed(b"".join(long[:3]))
    backlog.feed(b"x\n")  # dropped: the gap is after the third line
    assert taken(backlog, 1) == [long[0][:-1]]  # room again...
    backlog.feed(b"c\n" + long[3])  # ...so this comes after the gap
    backlog.feed(b"y\n")  # dropped again, after what came meanwhile
    assert taken(backlog) == [
        *(long[1][:-1], long[2][:-1], Dropped(1, T0)),
        *(b"c", long[3][:-1], Dropped(1, T0)),
    ]


def test_gaps_close_together_make_one_notice_until_the_log_catches_up() -> None:
    clock = Clock()
    backlog = Backlog(limit=4, clock=clock)
    backlog.feed(b"a\nb\n")
    backlog.feed(b"x\n")  # dropped after b
    assert taken(backlog) == [b"a", b"b", Dropped(1, T0)]
    for gap in range(3):  # more gaps, each reached within NOTICE_EVERY of the last notice
        clock.now = T0 + 0.1 * (gap + 1)
        backlog.feed(b"c\nd\n")
        backlog.feed(b"y\nz\n")  # dropped after d
        assert taken(backlog, 4) == [b"c", b"d"]
    clock.now = T0 + NOTICE_EVERY
    backlog.feed(b"e\nf\n")
    backlog.feed(b"w\n")  # dropped after f: one notice for all since the last one
    assert taken(backlog, 4) == [Dropped(6, T0 + 0.1), b"e", b"f"]
    assert taken(backlog) == [Dropped(1, T0 + NOTICE_EVERY)]  # caught up: out it comes


def test_a_line_given_out_in_pieces_ends_with_no_empty_line() -> None:
    assert messages_of([b"z" * 20_000, b"\n", b"\n"]) == ["z" * 10_000, "z" * 10_000, ""]


def test_a_gap_at_eof_still_comes_out() -> None:
    assert lines_of([b"a\nb\n", b"c\n", b"d"], limit=4) == [b"a", b"b", Dropped(2, T0)]


def test_what_is_left_when_reading_is_cut_off_counts_as_dropped() -> None:
    backlog = Backlog(limit=4, clock=lambda: T0)
    backlog.feed(b"a\nb\n")
    backlog.feed(b"c\n")
    assert backlog.discard() == Dropped(3, T0)
    assert backlog.finished
    assert backlog.discard() is None


# Lines that waited too long are dropped and counted.


def test_a_chunk_older_than_max_age_when_taken_is_dropped_and_counted() -> None:
    clock = Clock()
    backlog = Backlog(clock=clock)
    backlog.feed(b"old 1\nold 2\n")
    clock.now = T0 + MAX_AGE + 0.001
    assert taken(backlog) == [Dropped(2, T0)]
    backlog.feed(b"new\n")
    assert taken(backlog) == [b"new"]


def test_a_chunk_younger_than_max_age_is_kept() -> None:
    clock = Clock()
    backlog = Backlog(clock=clock)
    backlog.feed(b"fresh 1\nfresh 2\n")
    clock.now = T0 + MAX_AGE
    assert taken(backlog) == [b"fresh 1", b"fresh 2"]


def test_only_the_stale_chunks_go_and_their_gap_comes_first() -> None:
    clock = Clock()
    backlog = Backlog(clock=clock)
    backlog.feed(b"a\nb\n")
    clock.now = T0 + MAX_AGE / 2
    backlog.feed(b"c\n")
    clock.now = T0 + MAX_AGE * 1.2
    assert taken(backlog) == [Dropped(2, T0), b"c"]


def test_a_line_is_as_old_as_the_chunk_that_ends_it() -> None:
    clock = Clock()
    backlog = Backlog(clock=clock)
    backlog.feed(b"a\nst")
    backlog.feed(b"art")
    clock.now = T0 + MAX_AGE / 2
    backlog.feed(b"\nend\n")
    clock.now = T0 + MAX_AGE * 1.2
    assert taken(backlog) == [Dropped(1, T0), b"start", b"end"]


def test_what_was_dropped_of_a_chunk_does_not_age_what_comes_next() -> None:
    clock = Clock()
    backlog = Backlog(limit=3, clock=clock)
    backlog.feed(b"a\nbbbb")
    backlog.feed(b"b\n")  # no room: the line b goes, and with it the end of the first chunk
    assert taken(backlog) == [b"a", Dropped(1, T0)]
    clock.now = T0 + MAX_AGE / 2
    backlog.feed(b"c\n")
    clock.now = T0 + MAX_AGE * 1.01
    assert taken(backlog) == [b"c"]


def test_a_burst_the_log_takes_within_max_age_comes_out_whole() -> None:
    clock = Clock()
    backlog = Backlog(clock=clock)
    burst = [b"%05d" % i for i in range(5_000)]  # 30,000 bytes, taken 4 KiB a turn
    backlog.feed(b"".join(line + b"\n" for line in burst))
    out: list[bytes | Dropped] = []
    while batch := taken(backlog, 4096):
        out += batch
        clock.now += MAX_AGE / 10
    assert out == burst


def test_lines_dropped_for_age_and_for_room_make_one_gap() -> None:
    clock = Clock()
    backlog = Backlog(limit=4, clock=clock)
    backlog.feed(b"a\nb\n")
    backlog.feed(b"x\n")  # no room: dropped after b
    assert taken(backlog, 2) == [b"a"]  # room again
    clock.now = T0 + MAX_AGE / 2
    backlog.feed(b"c\n")  # after the gap
    clock.now = T0 + MAX_AGE * 1.2  # b too old by now
    assert taken(backlog) == [Dropped(2, T0), b"c"]


def test_a_gap_after_fresh_lines_stays_after_them() -> None:
    clock = Clock()
    backlog = Backlog(limit=6, clock=clock)
    backlog.feed(b"a\nb\n")
    clock.now = T0 + MAX_AGE / 2
    backlog.feed(b"c\nd\n")
    backlog.feed(b"x\n")  # no room: dropped after d
    clock.now = T0 + MAX_AGE * 1.2  # a and b too old by now
    assert taken(backlog) == [Dropped(2, T0), b"c", b"d", Dropped(1, T0 + MAX_AGE / 2)]


def test_the_end_of_a_line_given_out_in_pieces_is_no_line_of_its_own() -> None:
    clock = Clock()
    backlog = Backlog(clock=clock)
    backlog.feed(b"z" * MAX_LINE_BYTES)
    assert taken(backlog) == [b"z" * MAX_LINE_BYTES]
    backlog.feed(b"\n")  # the end of that line: too old when the log gets to it
    clock.now = T0 + MAX_AGE * 1.2
    backlog.feed(b"next\n")
    assert taken(backlog) == [b"next"]


def test_what_the_log_never_got_to_in_time_is_counted_at_eof() -> None:
    clock = Clock()
    backlog = Backlog(clock=clock)
    backlog.feed(b"a\nb\nc")
    backlog.end()
    clock.now = T0 + 1
    assert taken(backlog) == [Dropped(2, T0), b"c"]  # c's chunk was read then, but is EOF's
    assert backlog.finished


@given(
    st.lists(
        st.tuples(
            st.integers(0, 40),  # lines written
            st.integers(1, 200),  # the chunks they are read in, at most this long
            st.floats(0, 2 * MAX_AGE),  # seconds until the log takes some
            st.integers(1, 300),  # bytes it takes
        ),
        max_size=30,
    ),
    st.integers(1, 600),
)
def test_every_line_is_taken_whole_and_in_order_or_counted(
    turns: list[tuple[int, int, float, int]], limit: int
) -> None:
    clock = Clock()
    backlog = Backlog(limit=limit, clock=clock)
    written: list[float] = []  # when each line's end was read
    out: list[bytes | Dropped] = []

    def take(budget: int) -> None:
        batch = backlog.take(budget)
        for item in batch:
            if isinstance(item, bytes):
                assert clock.now - written[int(item.removeprefix(b"line "))] <= MAX_AGE + 1e-6
        out.extend(batch)

    for lines, size, wait, budget in turns:
        data = b"".join(b"line %d\n" % (len(written) + i) for i in range(lines))
        for start in range(0, len(data), size):
            chunk = data[start : start + size]
            backlog.feed(chunk)
            written += [clock.now] * chunk.count(b"\n")
        clock.now += wait
        take(budget)
    backlog.end()
    take(UNBOUNDED)
    assert backlog.finished
    numbers = [int(line.removeprefix(b"line ")) for line in out if isinstance(line, bytes)]
    assert numbers == sorted(set(numbers))
    dropped = sum(item.lines for item in out if isinstance(item, Dropped))
    assert len(numbers) + dropped == len(written)


# Reading streams.


def read(streams: list[list[bytes]], **options: int) -> list[bytes | Dropped]:
    """What read_output hands on for streams that held these chunks, then EOF."""

    async def scenario() -> list[bytes | Dropped]:
        readers = []
        for chunks in streams:
            reader = asyncio.StreamReader()
            for chunk in chunks:
                reader.feed_data(chunk)
            reader.feed_eof()
            readers.append(reader)
        found: list[bytes | Dropped] = []
        await read_output(readers, found.append, found.append, clock=lambda: T0, **options)
        return found

    return asyncio.run(scenario())


def test_read_output_reads_every_stream_to_its_end() -> None:
    found = read([[b"out 1\nout", b" 2\n"], [b"err 1\nerr 2"]], turn=4)
    assert sorted(found, key=repr) == [b"err 1", b"err 2", b"out 1", b"out 2"]
    assert [line for line in found if line.startswith(b"out")] == [b"out 1", b"out 2"]


def test_read_output_reads_on_while_lines_wait_and_counts_what_did_not_fit() -> None:
    async def scenario() -> list[bytes | Dropped]:
        reader = asyncio.StreamReader()
        found: list[bytes | Dropped] = []

        async def write() -> None:
            for turn in range(100):  # five lines a turn; one line a turn is taken
                reader.feed_data(b"".join(b"%03d\n" % (5 * turn + i) for i in range(5)))
                await asyncio.sleep(0)
            reader.feed_eof()

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(write())
            tasks.create_task(
                read_output(
                    [reader], found.append, found.append, limit=20, turn=4, clock=lambda: T0
                )
            )
        return found

    found = asyncio.run(scenario())
    lines = [int(item) for item in found if isinstance(item, bytes)]
    gaps = [item.lines for item in found if isinstance(item, Dropped)]
    assert gaps and len(lines) + sum(gaps) == 500
    assert lines == sorted(lines) and lines[:4] == [0, 1, 2, 3]


def test_tail_buffer_keeps_the_end() -> None:
    tail = TailBuffer(limit=10)
    for i in range(5):
        tail.write(f"line {i}\n".encode())
    assert tail.text() == " 3\nline 4\n"
