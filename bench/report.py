"""The bench's printed figures: one table per app, a row per scenario, medians in seconds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from push_timer import PHASES, Timing


@dataclass(frozen=True)
class Row:
    scenario: str
    target: str  # as the issue states it; "" where it sets none
    timings: Sequence[Timing]


def _seconds(value: float) -> str:
    return f"{value:.2f}"


def _cells(row: Row) -> list[str]:
    if not row.timings:
        return [row.scenario, "0", *["-"] * (3 + len(PHASES)), row.target]
    totals = [t.total for t in row.timings]
    medians = [statistics.median(t.phases[phase] for t in row.timings) for phase in PHASES]
    return [
        row.scenario,
        str(len(totals)),
        _seconds(statistics.median(totals)),
        _seconds(min(totals)),
        _seconds(max(totals)),
        *map(_seconds, medians),
        row.target,
    ]


def table(title: str, rows: Sequence[Row]) -> str:
    """A plain-text table: median total, min/max total, then the median of each phase."""
    header = ["scenario", "runs", "total", "min", "max", *PHASES, "target"]
    body = [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        first, *numbers, last = cells
        aligned = [first.ljust(widths[0])]
        aligned += [cell.rjust(width) for cell, width in zip(numbers, widths[1:-1], strict=True)]
        return "  ".join([*aligned, last]).rstrip()

    lines = [title, render(header), "  ".join("-" * width for width in widths)]
    lines += [render(cells) for cells in body]
    for row in rows:
        if row.timings:
            totals = " ".join(_seconds(t.total) for t in row.timings)
            lines.append(f"  {row.scenario}, each run's total: {totals}")
    return "\n".join(lines)
