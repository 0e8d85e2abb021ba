from __future__ import annotations

from pathlib import Path

from kapal.build.output import (
    MAX_LINE,
    BuildOutput,
    detail,
    error,
    human_size,
    split_lines,
    step,
)


def test_buildpack_line_styles() -> None:
    assert step("Python app detected") == "-----> Python app detected"
    assert detail("Procfile declares types -> web") == "       Procfile declares types -> web"
    assert detail("") == ""  # no trailing spaces on blank detail lines
    assert error("Push rejected, failed to compile Python app.") == (
        " !     Push rejected, failed to compile Python app."
    )


def test_sizes_read_like_the_slug_compiler() -> None:
    assert human_size(43_400_000) == "41.4M"
    assert human_size(12_897_485) == "12.3M"
    assert human_size(680 * 1024) == "680K"
    assert human_size(10) == "1K"


def test_split_lines_keeps_partial_lines_for_later() -> None:
    lines, rest = split_lines(b"", b"Resolved 8 packages\nPrepared")
    assert lines == ["Resolved 8 packages"]
    assert rest == b"Prepared"
    lines, rest = split_lines(rest, b" 8 packages\r\n")
    assert lines == ["Prepared 8 packages"]
    assert rest == b""


def test_split_lines_keeps_only_the_last_state_of_a_progress_bar() -> None:
    lines, _ = split_lines(b"", b" 10%\r 50%\r100% done\n\xff bad byte\n")
    assert lines == ["100% done", "\ufffd bad byte"]


def test_build_output_writes_through(tmp_path: Path) -> None:
    out = BuildOutput(tmp_path / "logs" / "b.log")
    out.step("Compressing...")
    # Readable before close: the output stream tails this file while the build runs.
    assert (tmp_path / "logs" / "b.log").read_text() == "-----> Compressing...\n"
    out.detail("Done: 1.0M")
    out.line()
    out.error("oops")
    out.close()
    assert (tmp_path / "logs" / "b.log").read_text().splitlines() == [
        "-----> Compressing...",
        "       Done: 1.0M",
        "",
        " !     oops",
    ]


def test_a_line_without_end_is_cut_into_pieces() -> None:
    lines, rest = split_lines(b"", b"x" * (2 * MAX_LINE + 10))
    assert [len(line) for line in lines] == [MAX_LINE, MAX_LINE]
    assert rest == b"x" * 10
