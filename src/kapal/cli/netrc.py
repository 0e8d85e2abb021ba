"""~/.netrc: where `kapal login` keeps the API token, so that git (through curl) sends it too.

Only the entry for Kapal's machine is ever touched; everything else in the file is kept as
written. The file is always left with mode 0600.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

# A comment runs to the end of its line; a token is a quoted string or a run of non-blanks.
_TOKEN = re.compile(r'(?P<comment>#[^\n]*)|(?P<token>"(?:[^"\\]|\\.)*"|\S+)')
_ENTRY_STARTS = ("machine", "default", "macdef")


@dataclass(frozen=True)
class Entry:
    machine: str | None  # None for `default`
    login: str | None
    password: str | None
    start: int  # where its text starts and ends in the file
    end: int


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] == '"':
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _tokens(text: str) -> list[tuple[str, int]]:
    """(token, offset) pairs; a macro definition's body (up to a blank line) is skipped."""
    found: list[tuple[str, int]] = []
    pos = 0
    in_macdef = False
    while (match := _TOKEN.search(text, pos)) is not None:
        pos = match.end()
        if match.group("comment") is not None:
            continue
        word = _unquote(match.group("token"))
        found.append((word, match.start()))
        if word == "macdef":
            in_macdef = True
        elif in_macdef:  # the macro's name: its body runs to the next blank line
            in_macdef = False
            blank = text.find("\n\n", pos)
            pos = len(text) if blank < 0 else blank + 2
    return found


def parse(text: str) -> list[Entry]:
    """The `machine` and `default` entries of a netrc file, with their spans."""
    tokens = _tokens(text)
    starts = [i for i, (tok, _) in enumerate(tokens) if tok in _ENTRY_STARTS]
    entries: list[Entry] = []
    for n, i in enumerate(starts):
        keyword = tokens[i][0]
        if keyword == "macdef":
            continue
        stop = starts[n + 1] if n + 1 < len(starts) else len(tokens)
        end = tokens[stop][1] if stop < len(tokens) else len(text)
        fields: dict[str, str] = {}
        j = i + (2 if keyword == "machine" else 1)
        while j + 1 < stop:
            fields.setdefault(tokens[j][0], tokens[j + 1][0])
            j += 2
        machine = tokens[i + 1][0] if keyword == "machine" and i + 1 < stop else None
        entries.append(
            Entry(machine, fields.get("login"), fields.get("password"), tokens[i][1], end)
        )
    return entries


def find(text: str, machine: str) -> Entry | None:
    return next((e for e in parse(text) if e.machine == machine), None)


def _check(value: str, what: str) -> str:
    if not value or any(ch.isspace() for ch in value) or value.startswith(("#", '"')):
        raise ValueError(f"{what} cannot be written to .netrc: {value!r}")
    return value


def with_entry(text: str, machine: str, login: str, password: str) -> str:
    """`text` with the entry for `machine` set (replacing any), every other entry unchanged."""
    block = (
        f"machine {_check(machine, 'machine')}\n"
        f"  login {_check(login, 'login')}\n"
        f"  password {_check(password, 'password')}\n"
    )
    matches = [e for e in parse(text) if e.machine == machine]
    if not matches:
        if text and not text.endswith("\n"):
            text += "\n"
        return text + block
    first = matches[0]
    text = without_entry(text, machine, keep_first=True)
    return text[: first.start] + block + text[first.end :]


def without_entry(text: str, machine: str, *, keep_first: bool = False) -> str:
    """`text` without the entries for `machine` (all, or all but the first)."""
    matches = [e for e in parse(text) if e.machine == machine]
    for entry in reversed(matches[1:] if keep_first else matches):
        text = text[: entry.start] + text[entry.end :]
    return text


# --- the file ---------------------------------------------------------------------------------


def read_entry(path: Path, machine: str) -> Entry | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return find(text, machine)


def write_entry(path: Path, machine: str, login: str, password: str) -> None:
    """Set the credentials for `machine`, keeping the rest of the file; mode 0600."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    _replace(path, with_entry(text, machine, login, password))


def remove_entry(path: Path, machine: str) -> bool:
    """Remove the credentials for `machine`; False when there were none."""
    if not path.exists():
        return False
    text = path.read_text(encoding="utf-8")
    new = without_entry(text, machine)
    if new == text:
        return False
    _replace(path, new)
    return True


def _replace(path: Path, text: str) -> None:
    """Write through a private temporary file and rename it over the (symlink-resolved)
    target, so a crash never leaves a half-written credential file."""
    target = path.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".netrc.", dir=target.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
