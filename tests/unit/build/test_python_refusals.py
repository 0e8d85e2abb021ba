"""The Python buildpack's refusals, as the pusher reads them, all before anything is installed:
stand-in interpreters and a uv that must never run."""

from __future__ import annotations

import asyncio
import tarfile
from pathlib import Path

import pytest

from kapal.build.buildpack import CompileDirs
from kapal.build.compiler import compile_slug
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed
from kapal.build.python import PythonBuildpack
from kapal.build.slugs import SlugStore

APP = {"requirements.txt": "flask\n", "Procfile": "web: flask run\n"}
REJECTED = " !     Push rejected, failed to compile Python app."


def interpreters(root: Path, *versions: str) -> Path:
    """A directory of python3.N scripts that answer like a Python of each version."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for version in versions:
        python = bin_dir / f"python{version.rsplit('.', 1)[0]}"
        python.write_text(f"#!/bin/sh\necho {version} {version}\n")
        python.chmod(0o755)
    return bin_dir


def build(tmp_path: Path, files: dict[str, str], *versions: str) -> str:
    """Build an app of `files` with interpreters of `versions`; the failed build's log."""
    tarball = tmp_path / "source.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, text in files.items():
            path = tmp_path / "src" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            tar.add(path, arcname=name)
    never = tmp_path / "uv"
    never.write_text("#!/bin/sh\necho uv ran >&2\nexit 99\n")
    never.chmod(0o755)
    buildpack = PythonBuildpack(
        str(tmp_path / "no-configured-python"),
        str(never),
        build_user=lambda: None,
        interpreter_dirs=[interpreters(tmp_path, *versions)],
    )
    out = BuildOutput(tmp_path / "build.log")
    dirs = CompileDirs(tmp_path / "build", tmp_path / "cache")
    with pytest.raises(BuildFailed):
        asyncio.run(
            compile_slug(tarball, dirs, out, [buildpack], SlugStore(tmp_path / "slugs", 10**8))
        )
    out.close()
    assert not (tmp_path / "slugs").exists()
    return (tmp_path / "build.log").read_text()


def test_an_unavailable_python_rejects_the_push(tmp_path: Path) -> None:
    log = build(tmp_path, {**APP, ".python-version": "3.14\n"}, "3.11.2", "3.13.1", "3.12.4")
    assert log.splitlines() == [
        "-----> Python app detected",
        " !     Python 3.14 is not available here. Available: 3.13, 3.12, 3.11.",
        "       HINT: name one of them in .python-version.",
        REJECTED,
    ]


def test_a_malformed_python_version_rejects_the_push(tmp_path: Path) -> None:
    log = build(tmp_path, {**APP, ".python-version": "latest\n"}, "3.11.2")
    assert log.splitlines()[1] == " !     Invalid Python version in .python-version: 'latest'."
    assert log.splitlines()[-1] == REJECTED


def test_several_package_managers_reject_the_push(tmp_path: Path) -> None:
    log = build(tmp_path, {**APP, "poetry.lock": "", "Pipfile.lock": "{}"}, "3.11.2")
    assert log.splitlines()[1] == (
        " !     Multiple Python package manager files were found: "
        "requirements.txt, Pipfile.lock, poetry.lock."
    )


POETRY_APP = {
    "pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.11"\nsix = "1.17.0"\n',
    "Procfile": "web: x\n",
}
POETRY_LOCK = """
[[package]]
name = "six"
version = "1.17.0"
files = []
%s
[metadata]
lock-version = "2.0"
"""


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {**POETRY_APP, "poetry.lock": POETRY_LOCK % '[package.source]\ntype = "git"\n'},
            " !     poetry.lock: six comes from a git repository; Kapal installs only packages "
            "from a package index.",
        ),
        (
            {**POETRY_APP, "poetry.lock": POETRY_LOCK.replace('"six"', '"other"') % ""},
            " !     poetry.lock is out of date: pyproject.toml needs six, which it does not lock.",
        ),
        (
            {"poetry.lock": POETRY_LOCK % "", "Procfile": "web: x\n"},
            " !     poetry.lock was found, but no pyproject.toml.",
        ),
    ],
    ids=["git source", "stale lock", "no pyproject.toml"],
)
def test_a_poetry_lock_kapal_cannot_install_from_rejects_the_push(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    log = build(tmp_path, files, "3.11.2")
    assert log.splitlines()[:2] == ["-----> Python app detected", message]
    assert log.splitlines()[-1] == REJECTED


def test_no_interpreter_at_all(tmp_path: Path) -> None:
    log = build(tmp_path, APP)
    assert " !     No Python interpreter is available here to build the app with." in log
