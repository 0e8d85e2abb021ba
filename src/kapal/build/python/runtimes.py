"""Pythons installed for one user, by pyenv or by uv, made usable by the user that builds and
runs apps: copied once into Kapal's runtimes directory, readable by everyone.

An installation in root's home (pyenv's usual place) cannot be run by another user, and
should not be made reachable in place. Its copy must run wherever it lies: a Python built
with a shared libpython finds it through an absolute RUNPATH into the original prefix, which
the copy rewrites relative to itself (`$ORIGIN`, with Debian's patchelf).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PYENV_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")  # pyenv's CPython (not pypy-, miniconda-)
UV_INSTALL = re.compile(r"cpython-(\d+)\.(\d+)\.(\d+)-linux-[a-z0-9_]+-gnu")
COPY = re.compile(r"(pyenv|uv)-(\d+)\.(\d+)\.(\d+)")  # in Kapal's runtimes directory
ELF = b"\x7fELF"


class RuntimeUnavailable(Exception):
    """A runtime could not be made usable; the message says why."""


@dataclass(frozen=True)
class Installation:
    """A CPython installed under `prefix` by `origin` (pyenv or uv)."""

    origin: str
    prefix: Path
    version: tuple[int, int, int]

    @property
    def full(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def name(self) -> str:
        return f"{self.origin}-{self.full}"

    @property
    def executable(self) -> Path:
        return self.prefix / "bin" / f"python{self.version[0]}.{self.version[1]}"


def installations(roots: Sequence[Path]) -> list[Installation]:
    """The CPython installations in `roots` (pyenv's versions/, uv's python/ or Kapal's
    runtimes directory) whose interpreter exists."""
    found = []
    for root in roots:
        try:
            names = sorted(os.listdir(root))
        except OSError:
            continue
        for name in names:
            install = _installation(root / name)
            if install is not None and install.version[0] == 3 and install.executable.is_file():
                found.append(install)
    return found


def _installation(prefix: Path) -> Installation | None:
    if match := PYENV_VERSION.fullmatch(prefix.name):
        origin, numbers = "pyenv", match.groups()
    elif match := UV_INSTALL.fullmatch(prefix.name):
        origin, numbers = "uv", match.groups()
    elif match := COPY.fullmatch(prefix.name):
        origin, numbers = match.group(1), match.groups()[1:]
    else:
        return None
    major, minor, micro = (int(part) for part in numbers)
    return Installation(origin, prefix, (major, minor, micro))


def discard(install: Installation, runtimes_dir: Path) -> None:
    """Remove the copy of `install` (one that does not run), so the next build makes it anew."""
    shutil.rmtree(runtimes_dir / install.name, ignore_errors=True)


def provide(install: Installation, runtimes_dir: Path) -> Path:
    """The interpreter of `install`'s copy in `runtimes_dir`, made on first use (blocking:
    run it in a thread). Raises RuntimeUnavailable when the copy cannot be made to run."""
    target = runtimes_dir / install.name
    executable = target / "bin" / install.executable.name
    if executable.is_file():
        return executable
    shared = any((install.prefix / "lib").glob("libpython*.so*"))
    if shared and _patchelf_program() is None:
        raise RuntimeUnavailable(
            f"Python {install.full} from {install.origin} uses a shared libpython: copying it "
            "needs patchelf (`apt-get install patchelf`, which `make up` does as root)."
        )
    runtimes_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    runtimes_dir.chmod(0o755)
    staging = runtimes_dir / f".{install.name}.{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(install.prefix, staging, symlinks=True)
        _relocate(staging, install.prefix)
        _open_to_all(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not executable.is_file():  # not another build's copy, finished first
                raise
    except OSError as exc:
        raise RuntimeUnavailable(f"Could not copy {install.prefix}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("copied Python %s from %s to %s", install.name, install.prefix, target)
    return executable


def _relocate(copy: Path, original: Path) -> None:
    """Rewrite every RUNPATH/RPATH in `copy` that points into `original` relative to the
    file itself, so the copy loads its own libpython."""
    for path in _elf_files(copy):
        try:
            rpath = _patchelf("--print-rpath", str(path)).strip()
        except RuntimeUnavailable:
            continue  # not a dynamic executable or library (an object file, a static archive)
        if str(original) not in rpath:
            continue
        here = "$ORIGIN/" + os.path.relpath(copy, path.parent)
        _patchelf("--set-rpath", rpath.replace(str(original), here), str(path))


def _elf_files(root: Path) -> Iterator[Path]:
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_symlink():
                continue
            with path.open("rb") as file:
                if file.read(4) == ELF:
                    yield path


def _patchelf_program() -> str | None:
    return shutil.which("patchelf", path="/usr/bin:/usr/local/bin:/bin")


def _patchelf(*args: str) -> str:
    program = _patchelf_program()
    if program is None:
        raise RuntimeUnavailable("patchelf is not installed")
    result = subprocess.run(
        [program, *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise RuntimeUnavailable(f"patchelf {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def _open_to_all(root: Path) -> None:
    """Readable by everyone; directories and executables also searchable/runnable."""
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(directory, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            extra = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
            if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
                extra |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
            path.chmod(stat.S_IMODE(mode) | extra)
    root.chmod(0o755)
