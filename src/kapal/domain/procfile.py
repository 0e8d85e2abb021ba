"""Parse a Procfile: one `<process type>: <command>` per line."""

from __future__ import annotations

import re

from kapal.domain.errors import InvalidParams

_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]*)\s*:\s*(.+?)\s*$")
MAX_TYPE_LENGTH = 63


class ProcfileError(InvalidParams):
    """A Procfile line that does not read as `<type>: <command>`."""


def parse_procfile(text: str) -> dict[str, str]:
    """Return {process type: command}; blank lines and `#` comments are skipped."""
    types: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ProcfileError(
                f'Procfile line {number}: expected "<process type>: <command>", got {raw.strip()!r}'
            )
        name, command = match.groups()
        if len(name) > MAX_TYPE_LENGTH:
            raise ProcfileError(
                f"Procfile line {number}: process type names are at most {MAX_TYPE_LENGTH} "
                "characters"
            )
        if name in types:
            raise ProcfileError(f"Procfile line {number}: process type {name!r} is declared twice")
        types[name] = command
    return types
