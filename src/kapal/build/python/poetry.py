"""poetry.lock as hashed requirements for `uv pip install` (pure): the locked packages the
app's main dependencies need, not its dev or other groups', nor the app itself.

Poetry 2 (lock-version 2.1) says which groups need each package and under which markers.
Older locks (2.0, 1.x) do not: the packages are found by walking the dependency graph from
pyproject.toml's main dependencies, following the extras asked for on the way, each package's
markers being those of the paths that lead to it. A package from a git repository, a URL or
a local path is refused: there is nothing to check its hash against.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from kapal.build.process import BuildFailed

POETRY_LOCK = "poetry.lock"
PYPROJECT = "pyproject.toml"
LOCK_HINT = "HINT: run `poetry lock` and commit poetry.lock."
# Where the hash of a package from these would come from is unknown.
UNHASHABLE_SOURCES = {
    "git": "a git repository",
    "url": "a URL",
    "directory": "a local directory",
    "file": "a local file",
}
HASHES = ("sha256:", "sha384:", "sha512:")
NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
ONLY_EXTRA = re.compile(r"""\s*extra\s*==\s*(?:"([^"]*)"|'([^']*)')\s*""")

# A marker in disjunctive normal form: any of these conjunctions of marker expressions.
Marker = frozenset[frozenset[str]]
ALWAYS: Marker = frozenset({frozenset()})
NEVER: Marker = frozenset()


def canonical(name: str) -> str:
    """A package name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def both(a: Marker, b: Marker) -> Marker:
    return either(NEVER, frozenset(x | y for x in a for y in b))


def either(a: Marker, b: Marker) -> Marker:
    """a or b, without a conjunction that a shorter one already covers."""
    union = a | b
    return frozenset(c for c in union if not any(other < c for other in union))


def marker(expression: str | None) -> Marker:
    text = (expression or "").strip()
    return frozenset({frozenset({text})}) if text else ALWAYS


def _written(marker: Marker) -> str:
    """PEP 508 text of a marker other than ALWAYS."""

    def conjunction(atoms: frozenset[str]) -> str:
        if len(atoms) == 1:
            return next(iter(atoms))
        return " and ".join(f"({atom})" for atom in sorted(atoms))

    parts = sorted(conjunction(c) for c in marker)
    if len(parts) == 1:
        return parts[0]
    return " or ".join(f"({part})" for part in parts)


def _load(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildFailed(f"{name} is not valid TOML: {exc}.") from None


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BuildFailed(f"{where} is not a table.", hint=LOCK_HINT)
    return value


class _Root:
    """One of pyproject.toml's main dependencies: a name, its extras and its markers."""

    def __init__(self, name: str, extras: Iterable[str] = (), when: Marker = ALWAYS) -> None:
        self.name = canonical(name)
        self.extras = frozenset(canonical(extra) for extra in extras)
        self.when = when


def _python_marker(constraint: str) -> Marker:
    """A Poetry `python = "..."` constraint (^3.8, ~3.8, >=3.8,<3.12, 3.8.*, a || b)."""
    result = NEVER
    for alternative in constraint.split("||"):
        atoms = set()
        tight = re.sub(r"(\^|~=|~|==|!=|<=|>=|<|>)\s+", r"\1", alternative)
        for clause in filter(None, re.split(r"[,\s]+", tight)):
            found = re.fullmatch(r"(\^|~=|~|==|!=|<=|>=|<|>)?(\d+(?:\.\d+)*)(\.\*)?", clause)
            if clause == "*":
                continue
            if found is None:
                raise BuildFailed(f"{PYPROJECT}: cannot read the Python constraint {clause!r}.")
            op, version, star = found.group(1) or "==", found.group(2), found.group(3)
            key = "python_full_version" if version.count(".") > 1 else "python_version"
            parts = [int(part) for part in version.split(".")]
            # The part that the upper bound of ^, ~, ~= and .* increments.
            bump = {"^": 0, "~": min(1, len(parts) - 1), "~=": max(0, len(parts) - 2)}.get(op)
            if star:
                bump = len(parts) - 1
            if bump is None:
                atoms.add(f'{key} {op} "{version}"')
                continue
            upper = ".".join(map(str, [*parts[:bump], parts[bump] + 1]))
            atoms.add(f'{key} >= "{version}"')
            atoms.add(f'{key} < "{upper}"')
        result = either(result, frozenset({frozenset(atoms)}))
    return result


def _poetry_roots(dependencies: Mapping[str, Any]) -> list[_Root]:
    """[tool.poetry.dependencies], without python and the app's own optional extras."""
    roots = []
    for name, spec in dependencies.items():
        if canonical(name) == "python":
            continue
        for entry in spec if isinstance(spec, list) else [spec]:
            if not isinstance(entry, Mapping):
                roots.append(_Root(name))
                continue
            if entry.get("optional", False):
                continue  # only installed with an extra of the app's, which Heroku does not ask
            when = marker(entry.get("markers"))
            if isinstance(entry.get("python"), str):
                when = both(when, _python_marker(entry["python"]))
            if isinstance(entry.get("platform"), str):
                when = both(when, marker(f'sys_platform == "{entry["platform"]}"'))
            roots.append(_Root(name, entry.get("extras", ()), when))
    return roots


def _pep508_roots(dependencies: Iterable[object]) -> list[_Root]:
    """[project] dependencies: PEP 508 strings."""
    roots = []
    for requirement in dependencies:
        text = str(requirement)
        found = NAME.match(text)
        if found is None:
            raise BuildFailed(f"{PYPROJECT}: cannot read the dependency {text!r}.")
        extras = [e.strip() for e in (found.group(2) or "").split(",") if e.strip()]
        _, _, when = text.partition(";")
        roots.append(_Root(found.group(1), extras, marker(when)))
    return roots


def main_dependencies(pyproject: Mapping[str, Any]) -> list[_Root]:
    """The app's main dependencies, from [project] and [tool.poetry] alike."""
    project = pyproject.get("project", {})
    poetry = pyproject.get("tool", {}).get("poetry", {})
    roots = _pep508_roots(project.get("dependencies", []) if isinstance(project, dict) else [])
    if isinstance(poetry, dict):
        roots += _poetry_roots(_table(poetry.get("dependencies", {}), "[tool.poetry.dependencies]"))
    return roots


class _Lock:
    def __init__(self, document: Mapping[str, Any]) -> None:
        metadata = _table(document.get("metadata", {}), f"{POETRY_LOCK} [metadata]")
        self.version = str(metadata.get("lock-version", ""))
        if not re.fullmatch(r"[12]\.\d+", self.version):
            raise BuildFailed(
                f"{POETRY_LOCK} has lock-version {self.version or '(none)'!r}; Kapal reads "
                "lock-version 1.x and 2.x.",
                hint=LOCK_HINT,
            )
        self.old_files = metadata.get("files", {})  # lock-version 1.x keeps the hashes here
        packages = document.get("package", [])
        if not isinstance(packages, list):
            raise BuildFailed(f"{POETRY_LOCK}: [[package]] is not a list.", hint=LOCK_HINT)
        self.packages: dict[str, list[Mapping[str, Any]]] = {}
        for number, package in enumerate(packages, 1):
            package = _table(package, f"{POETRY_LOCK} package {number}")
            if not isinstance(package.get("name"), str) or "version" not in package:
                raise BuildFailed(
                    f"{POETRY_LOCK} package {number} has no name or version.", hint=LOCK_HINT
                )
            self.packages.setdefault(canonical(package["name"]), []).append(package)

    def has_groups(self) -> bool:
        every = [p for same in self.packages.values() for p in same]
        return bool(every) and all(isinstance(p.get("groups"), list) for p in every)

    def only(self, name: str, needed_by: str) -> Mapping[str, Any]:
        """The one locked version of `name` (a graph of an old lock names no version)."""
        found = self.packages.get(name)
        if not found:
            raise BuildFailed(
                f"{POETRY_LOCK} is out of date: {needed_by} needs {name}, which it does not lock.",
                hint=LOCK_HINT,
            )
        if len(found) > 1:
            versions = ", ".join(str(p["version"]) for p in found)
            raise BuildFailed(
                f"{POETRY_LOCK} locks several versions of {name} ({versions}); Kapal can tell "
                f"them apart only in a lock of Poetry 2 (lock-version 2.1).",
                hint="HINT: run `poetry lock` with Poetry 2 and commit poetry.lock.",
            )
        return found[0]

    def hashes(self, package: Mapping[str, Any]) -> list[str]:
        files = package.get("files")
        if files is None and isinstance(self.old_files, Mapping):
            files = self.old_files.get(package["name"], [])
        found = [f.get("hash", "") for f in files or [] if isinstance(f, Mapping)]
        return sorted({h for h in found if isinstance(h, str) and h.startswith(HASHES)})


def _walk(lock: _Lock, roots: list[_Root]) -> list[tuple[Mapping[str, Any], Marker]]:
    """Every package the roots need, with the markers under which they need it."""
    needed: dict[str, tuple[Marker, frozenset[str]]] = {}
    work = [(root.name, root.when, root.extras, PYPROJECT) for root in roots]
    while work:
        name, when, extras, needed_by = work.pop()
        package = lock.only(name, needed_by)
        old_when, old_extras = needed.get(name, (NEVER, frozenset()))
        new_when, new_extras = either(old_when, when), old_extras | extras
        if name in needed and (new_when, new_extras) == (old_when, old_extras):
            continue
        needed[name] = (new_when, new_extras)
        by_extras = set()
        for extra, members in _table(package.get("extras", {}), f"{name}'s extras").items():
            if canonical(extra) in new_extras:
                for member in members:
                    found = NAME.match(str(member))
                    if found:
                        by_extras.add(canonical(found.group(1)))
        deps = _table(package.get("dependencies", {}), f"{POETRY_LOCK} {name}'s dependencies")
        for dep_name, spec in deps.items():
            dep = canonical(dep_name)
            for entry in spec if isinstance(spec, list) else [spec]:
                entry = entry if isinstance(entry, Mapping) else {}
                if entry.get("optional", False) and dep not in by_extras:
                    continue
                expression = entry.get("markers")
                only_extra = ONLY_EXTRA.fullmatch(expression or "")
                if only_extra:  # `extra == "x"` means: with extra x, always
                    if canonical(only_extra.group(1) or only_extra.group(2)) not in new_extras:
                        continue
                    expression = None
                dep_extras = frozenset(canonical(e) for e in entry.get("extras", ()))
                work.append((dep, both(new_when, marker(expression)), dep_extras, name))
    return [(lock.only(name, ""), when) for name, (when, _) in needed.items()]


def _main_group(lock: _Lock, roots: list[_Root]) -> list[tuple[Mapping[str, Any], Marker]]:
    """Poetry 2's own answer: the packages of the main group, with their markers there."""
    for root in roots:
        if not any("main" in p["groups"] for p in lock.packages.get(root.name, [])):
            raise BuildFailed(
                f"{POETRY_LOCK} is out of date: {PYPROJECT} needs {root.name}, which it does "
                "not lock.",
                hint=LOCK_HINT,
            )
    chosen = []
    for same in lock.packages.values():
        for package in same:
            if "main" not in package["groups"]:
                continue
            markers = package.get("markers")
            if isinstance(markers, Mapping):
                markers = markers.get("main")
            chosen.append((package, marker(markers if isinstance(markers, str) else None)))
    return chosen


def requirements(pyproject_text: str, lock_text: str) -> str:
    """The hashed requirements (one `name==version ; markers --hash=...` each) that install
    what poetry.lock locks for pyproject.toml's main dependencies."""
    pyproject = _load(pyproject_text, PYPROJECT)
    lock = _Lock(_load(lock_text, POETRY_LOCK))
    roots = main_dependencies(pyproject)
    chosen = _main_group(lock, roots) if lock.has_groups() else _walk(lock, roots)
    lines = []
    indexes = set()
    for package, when in sorted(
        chosen, key=lambda pair: (canonical(pair[0]["name"]), str(pair[0]["version"]))
    ):
        name = package["name"]
        source = package.get("source", {})
        kind = source.get("type") if isinstance(source, Mapping) else None
        if kind in UNHASHABLE_SOURCES:
            raise BuildFailed(
                f"{POETRY_LOCK}: {name} comes from {UNHASHABLE_SOURCES[kind]}; Kapal installs "
                "only packages from a package index.",
                hint=f"HINT: publish {name} to a package index, or add its code to the app.",
            )
        if kind == "legacy" and isinstance(source.get("url"), str):
            indexes.add(source["url"])
        line = f"{name}=={package['version']}"
        if when != ALWAYS:
            line += f" ; {_written(when)}"
        lines.append(" \\\n    ".join([line, *(f"--hash={h}" for h in lock.hashes(package))]))
    options = [f"--extra-index-url {url}" for url in sorted(indexes)]
    return "".join(f"{line}\n" for line in [*options, *lines])
