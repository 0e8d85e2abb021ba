"""Heroku's Range header for lists: `version ..; order=desc, max=15`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kapal.domain.errors import BadRequest

DEFAULT_MAX = 200
LIMIT = 1000
_RANGE = re.compile(r"^\s*(\w+)\s*(?:\]?\s*(\S*)\s*\.\.\s*(\S*)\s*)?(?:;(.*))?$")


@dataclass(frozen=True)
class Range:
    field: str
    descending: bool = False
    max: int = DEFAULT_MAX


def parse_range(header: str | None, fields: tuple[str, ...], default: str) -> Range:
    if not header:
        return Range(default)
    match = _RANGE.match(header)
    if match is None or match.group(1) not in fields:
        raise BadRequest(f"Invalid Range header {header!r}; sortable fields: {', '.join(fields)}.")
    options = match.group(4) or ""
    descending, size = False, DEFAULT_MAX
    for part in re.split(r"[;,]", options):
        key, _, value = part.strip().partition("=")
        if key == "order":
            descending = value.strip() == "desc"
        elif key == "max" and value.strip().isdigit():
            size = min(int(value), LIMIT)
    return Range(match.group(1), descending, size)
