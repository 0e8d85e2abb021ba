"""Which Python an app asks for, and which interpreter available here serves it (pure).

The request comes from the first of `.python-version` (`3.12` or `3.12.1`), `runtime.txt`
(`python-3.12.1`), Pipfile.lock's `python_full_version` or `python_version` and
pyproject.toml's `[project] requires-python` (`>=3.10,<3.13`); a bare
`3.12` takes any 3.12.x, `3.12.1` only that one. Without a request, the newest available.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kapal.build.process import BuildFailed

PYTHON_VERSION = ".python-version"
RUNTIME_TXT = "runtime.txt"
PIPFILE_LOCK = "Pipfile.lock"
PYPROJECT = "pyproject.toml"
# In the order they are looked at: the first one present decides.
VERSION_FILES = (PYTHON_VERSION, RUNTIME_TXT, PIPFILE_LOCK, PYPROJECT)

VERSION = re.compile(r"(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?")
RUNTIME = re.compile(r"python-(\d{1,4}\.\d{1,4}(?:\.\d{1,4})?)")
# One clause of a PEP 440 specifier, for final releases only (no a1/rc1/post/dev/local).
CLAUSE = re.compile(r"\s*(~=|==|!=|<=|>=|<|>)\s*(\d{1,4}(?:\.\d{1,4}){0,3})(\.\*)?\s*")
PINNED_HINT = "HINT: write a version like 3.12 (any 3.12.x) or 3.12.1 (exactly that one)."


@dataclass(frozen=True)
class Interpreter:
    """A Python the build (and dyno) user can run."""

    path: str
    version: tuple[int, int, int]
    full: str  # as the interpreter says it: "3.11.2", "3.14.0rc1"

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


@dataclass(frozen=True)
class Clause:
    """`op version`, or with `prefix` (`==3.12.*`) a match on the leading components."""

    op: str
    version: tuple[int, ...]
    prefix: bool = False

    def allows(self, candidate: tuple[int, ...]) -> bool:
        if self.prefix:
            head = _padded(candidate, len(self.version))[: len(self.version)]
            return (head == self.version) == (self.op == "==")
        width = max(len(candidate), len(self.version))
        mine, theirs = _padded(self.version, width), _padded(candidate, width)
        return {
            "==": theirs == mine,
            "!=": theirs != mine,
            "<": theirs < mine,
            "<=": theirs <= mine,
            ">": theirs > mine,
            ">=": theirs >= mine,
        }[self.op]


@dataclass(frozen=True)
class Request:
    """A Python version the app asks for: `text` as written in the file `source`."""

    source: str
    text: str
    clauses: tuple[Clause, ...]

    def allows(self, version: tuple[int, ...]) -> bool:
        return all(clause.allows(version) for clause in self.clauses)


@dataclass(frozen=True)
class Choice:
    interpreter: Interpreter
    announcement: str  # shown as a build step


def _padded(version: tuple[int, ...], width: int) -> tuple[int, ...]:
    return version + (0,) * (width - len(version))


def _shown(value: str) -> str:
    """A value from the app, quoted and kept short for an error message."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _text(files: Mapping[str, bytes], name: str) -> str:
    try:
        return files[name].decode("utf-8")
    except UnicodeDecodeError:
        raise BuildFailed(f"{name} is not valid UTF-8 text.") from None


def parse_python_version_file(text: str) -> Request:
    """`.python-version`: its first line that is neither blank nor a comment."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = VERSION.fullmatch(line)
        if match is None:
            raise BuildFailed(
                f"Invalid Python version in {PYTHON_VERSION}: {_shown(line)}.", hint=PINNED_HINT
            )
        version = tuple(int(part) for part in match.groups() if part is not None)
        return Request(PYTHON_VERSION, line, (Clause("==", version, prefix=True),))
    raise BuildFailed(f"{PYTHON_VERSION} does not name a Python version.", hint=PINNED_HINT)


def parse_runtime_txt(text: str) -> Request:
    """`runtime.txt`: `python-3.12` or `python-3.12.1`, alone in the file."""
    value = text.strip()
    match = RUNTIME.fullmatch(value)
    if match is None:
        raise BuildFailed(
            f"Invalid Python version in {RUNTIME_TXT}: {_shown(value)}.",
            hint="HINT: write python-3.12.1 there, or better, 3.12 in a .python-version file.",
        )
    version = tuple(int(part) for part in match.group(1).split("."))
    return Request(RUNTIME_TXT, match.group(1), (Clause("==", version, prefix=True),))


def parse_pipfile_lock(text: str) -> Request | None:
    """Pipfile.lock's `_meta.requires`: `python_full_version` (3.12.1) or `python_version`
    (3.12), if it names one."""
    try:
        data = json.loads(text)
    except ValueError:
        raise BuildFailed(f"{PIPFILE_LOCK} is not valid JSON.") from None
    meta = data.get("_meta") if isinstance(data, dict) else None
    requires = meta.get("requires") if isinstance(meta, dict) else None
    if not isinstance(requires, dict):
        return None
    value = requires.get("python_full_version") or requires.get("python_version")
    if value is None:
        return None
    match = VERSION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise BuildFailed(
            f"Invalid Python version in {PIPFILE_LOCK}: {_shown(str(value))}.", hint=PINNED_HINT
        )
    version = tuple(int(part) for part in match.groups() if part is not None)
    return Request(PIPFILE_LOCK, value, (Clause("==", version, prefix=True),))


def parse_specifier(spec: str) -> tuple[Clause, ...]:
    """A requires-python specifier (`>=3.10,<3.13`, `==3.12.*`, `~=3.11`); ValueError names
    the clause that is not understood."""
    clauses: list[Clause] = []
    for part in spec.split(","):
        match = CLAUSE.fullmatch(part)
        if match is None:
            raise ValueError(part.strip())
        op, digits, star = match.groups()
        version = tuple(int(number) for number in digits.split("."))
        if star and op not in ("==", "!="):
            raise ValueError(part.strip())
        if op == "~=":
            if len(version) < 2:
                raise ValueError(part.strip())
            # ~=3.11 is >=3.11 with ==3.*; ~=3.11.2 is >=3.11.2 with ==3.11.*
            clauses += [Clause(">=", version), Clause("==", version[:-1], prefix=True)]
        else:
            clauses.append(Clause(op, version, prefix=bool(star)))
    return tuple(clauses)


def parse_pyproject(text: str) -> Request | None:
    """pyproject.toml's `[project] requires-python`, if it has one."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildFailed(f"{PYPROJECT} is not valid TOML: {exc}.") from None
    project = data.get("project")
    if not isinstance(project, dict) or "requires-python" not in project:
        return None
    spec = project["requires-python"]
    if not isinstance(spec, str):
        raise BuildFailed(f"requires-python in {PYPROJECT} must be a string.")
    if not spec.strip():
        return None
    try:
        clauses = parse_specifier(spec)
    except ValueError as exc:
        raise BuildFailed(
            f"Cannot read requires-python in {PYPROJECT}: {_shown(str(exc))} is not a version "
            "specifier Kapal understands.",
            hint="HINT: use final versions with ==, !=, <, <=, >, >=, ~= or ==3.12.*, or name "
            "the version in a .python-version file, which takes precedence.",
        ) from None
    return Request(PYPROJECT, spec.strip(), clauses)


def requested_version(files: Mapping[str, bytes]) -> Request | None:
    """The app's request, from the first of VERSION_FILES in `files` (name -> content)."""
    if PYTHON_VERSION in files:
        return parse_python_version_file(_text(files, PYTHON_VERSION))
    if RUNTIME_TXT in files:
        return parse_runtime_txt(_text(files, RUNTIME_TXT))
    if PIPFILE_LOCK in files:
        request = parse_pipfile_lock(_text(files, PIPFILE_LOCK))
        if request is not None:
            return request
    if PYPROJECT in files:
        return parse_pyproject(_text(files, PYPROJECT))
    return None


def available_minors(available: Sequence[Interpreter]) -> str:
    """`3.13, 3.12, 3.11`: each minor version once, newest first."""
    minors = sorted({i.version[:2] for i in available}, reverse=True)
    return ", ".join(f"{major}.{minor}" for major, minor in minors)


def choose(request: Request | None, available: Sequence[Interpreter]) -> Choice:
    """The newest available interpreter the request allows; BuildFailed if there is none."""
    if not available:
        raise BuildFailed("No Python interpreter is available here to build the app with.")
    if request is None:
        newest = max(available, key=lambda i: i.version)
        return Choice(newest, f"No Python version was specified. Using Python {newest.minor}")
    allowed = [i for i in available if request.allows(i.version)]
    if not allowed:
        raise BuildFailed(
            f"Python {request.text} is not available here. "
            f"Available: {available_minors(available)}.",
            hint=f"HINT: name one of them in {PYTHON_VERSION}"
            + ("." if request.source == PYTHON_VERSION else f", which overrides {request.source}."),
        )
    chosen = max(allowed, key=lambda i: i.version)
    shown = chosen.minor if request.source == PYPROJECT else request.text
    return Choice(chosen, f"Using Python {shown} specified in {request.source}")
