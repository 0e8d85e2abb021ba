"""Finding the Pythons pyenv and uv installed, and naming their copies (no copying here)."""

from __future__ import annotations

from pathlib import Path

from kapal.build.python.runtimes import installations


def make(root: Path, name: str, executable: str) -> None:
    bin_dir = root / name / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / executable).write_text("")


def test_pyenv_uv_and_copied_installations_are_found(tmp_path: Path) -> None:
    make(tmp_path / "pyenv", "3.12.1", "python3.12")
    make(tmp_path / "pyenv", "2.7.18", "python2.7")  # not a Python 3
    make(tmp_path / "pyenv", "pypy3.10-7.3.12", "python3.10")  # not CPython
    make(tmp_path / "pyenv", "3.9.18", "python3.8")  # no interpreter of its own version
    make(tmp_path / "uv", "cpython-3.13.0-linux-x86_64-gnu", "python3.13")
    make(tmp_path / "copies", "pyenv-3.10.13", "python3.10")
    found = installations([tmp_path / "pyenv", tmp_path / "uv", tmp_path / "copies"])
    assert [(i.origin, i.full, i.name) for i in found] == [
        ("pyenv", "3.12.1", "pyenv-3.12.1"),
        ("uv", "3.13.0", "uv-3.13.0"),
        ("pyenv", "3.10.13", "pyenv-3.10.13"),
    ]
    assert found[0].executable == tmp_path / "pyenv" / "3.12.1" / "bin" / "python3.12"
    assert installations([tmp_path / "missing"]) == []
