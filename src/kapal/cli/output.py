"""How Kapal prints things, the Heroku way: `⬢ app`, `Doing x... done`, `=== headers`, aligned
`Key: value` blocks and `2026/11/26 13:39:22 +0000 (~ 6s ago)` times. Formatters are pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo

import click

HEXAGON = "⬢"
WARNING = " !    "  # prefix of hints and warnings (errors use ` ▸    `)


def hexagon(app: str) -> str:
    """`⬢ NAME`, how an app is named in status lines."""
    return f"{HEXAGON} {app}"


class Action:
    """The status an `action` prints when its block succeeds; `done(...)` changes it."""

    def __init__(self) -> None:
        self.status = "done"

    def done(self, status: str) -> None:
        self.status = status


@contextmanager
def action(message: str) -> Iterator[Action]:
    """`message... ` on stderr, then `done` (or the status set with `.done()`) when the block
    succeeds, or `!` when it raises (the error is printed after it)."""
    click.echo(f"{message}... ", err=True, nl=False)
    act = Action()
    try:
        yield act
    except BaseException:
        click.echo("!", err=True)
        raise
    click.echo(act.status, err=True)


def header(text: str) -> str:
    return f"=== {text}"


def echo_header(text: str) -> None:
    """`=== text` then a blank line, like Heroku's styled headers."""
    click.echo(header(text))
    click.echo()


def key_values(rows: Sequence[tuple[str, str]]) -> list[str]:
    """`Key: value` lines with the values aligned after the longest key."""
    if not rows:
        return []
    width = max(len(key) for key, _ in rows) + 1
    return [f"{key + ':':<{width}} {value}".rstrip() for key, value in rows]


def key_values_of(mapping: Mapping[str, str]) -> list[str]:
    return key_values(sorted(mapping.items()))


def columns(rows: Sequence[Sequence[str]], gap: str = "  ") -> list[str]:
    """Rows of cells, each column padded to its widest cell."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        gap.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def parse_time(value: str) -> datetime:
    """An API timestamp (ISO 8601, `Z` or an offset; naive means UTC)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_time(value: str, tz: tzinfo | None = None) -> str:
    """`2026/11/26 13:39:22 +0000` in `tz` (None: the local time zone)."""
    return parse_time(value).astimezone(tz).strftime("%Y/%m/%d %H:%M:%S %z")


def ago(value: str, now: datetime) -> str:
    """`~ 6s ago`, `~ 3m ago`, `~ 2h ago`, `~ 4d ago`."""
    seconds = max(0, int((now - parse_time(value)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"~ {seconds // size}{unit} ago"
    return f"~ {seconds}s ago"


def within(value: str, now: datetime) -> str:
    """`in 9s`, `in 3m`, `in 2h`, `in 4d`; `now` once that time has come."""
    seconds = int((parse_time(value) - now).total_seconds())
    if seconds <= 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
