"""Reading dyno output line by line."""

from __future__ import annotations

import asyncio

from kapal.runtime.output import TailBuffer, read_lines


def lines_of(chunks: list[bytes], limit: int = 64) -> list[bytes]:
    async def scenario() -> list[bytes]:
        stream = asyncio.StreamReader(limit=limit)
        for chunk in chunks:
            stream.feed_data(chunk)
        stream.feed_eof()
        found: list[bytes] = []
        await read_lines(stream, found.append)
        return found

    return asyncio.run(scenario())


def test_lines_and_a_last_line_without_newline() -> None:
    assert lines_of([b"one\ntw", b"o\n", b"three"]) == [b"one\n", b"two\n", b"three"]


def test_a_line_longer_than_the_buffer_comes_out_in_pieces() -> None:
    found = lines_of([b"x" * 200 + b"\nnext\n"])
    assert b"".join(found[:-1]) == b"x" * 200
    assert all(len(piece) <= 201 for piece in found)
    assert found[-1] == b"next\n"


def test_tail_buffer_keeps_the_end() -> None:
    tail = TailBuffer(limit=10)
    for i in range(5):
        tail.write(f"line {i}\n".encode())
    assert tail.text() == " 3\nline 4\n"
