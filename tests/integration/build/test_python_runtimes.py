"""A Python that pyenv (or uv) installed for root, asked for by an app: copied once where the
build and dyno user can run it, and the slug's virtualenv runs on the copy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tests.integration.build.test_python_build import app_with, build, machine_python
from uv import find_uv_bin

from kapal.build.compiler import CompiledSlug
from kapal.build.python import PythonBuildpack
from kapal.build.python.runtimes import Installation, installations
from kapal.settings import python_roots
from kapal.system_users import RunAs


@pytest.fixture
def tmp_path(open_dir: Path) -> Path:
    """Where the build user can reach (pytest's own tmp_path is root's alone)."""
    return open_dir


def other_python() -> Installation:
    """An installed CPython of another minor version than the machine's /usr/bin/python3."""
    found = installations(python_roots(os.environ, Path.home()))
    for install in sorted(found, key=lambda i: i.version, reverse=True):
        if f"{install.version[0]}.{install.version[1]}" != machine_python():
            return install
    pytest.skip("no pyenv or uv Python of another version is installed here")


def test_a_pyenv_python_is_copied_once_and_the_slug_runs_on_it(tmp_path: Path) -> None:
    install = other_python()
    minor = f"{install.version[0]}.{install.version[1]}"
    runtimes_dir = tmp_path / "runtimes"
    buildpack = PythonBuildpack(
        "/usr/bin/python3",
        find_uv_bin(),
        runtimes_dir=runtimes_dir,
        runtime_roots=[install.prefix.parent],
    )
    app = app_with("flask-hello", tmp_path, {".python-version": f"{minor}\n"})
    first = tmp_path / "first"
    first.mkdir()

    result, log = build(app, first, buildpack=buildpack)

    assert isinstance(result, CompiledSlug), log
    copy = runtimes_dir / install.name
    lines = log.splitlines()
    assert f"-----> Using Python {minor} specified in .python-version" in lines
    assert f"       Copying Python {install.full} from {install.origin} (once)" in lines
    assert f"       Python {install.full} ({copy}/bin/python{minor})" in lines
    # The virtualenv runs on the copy, as the dyno user would run it.
    python = first / "build" / ".venv" / "bin" / "python"
    assert os.path.realpath(python).startswith(f"{copy}/")
    options = RunAs.system().spawn_options(0o022) if os.geteuid() == 0 else {}
    ran = subprocess.run(
        [str(python), "-c", "import flask, sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/"},
        cwd="/",
        **options,
    )
    assert (ran.returncode, ran.stdout.strip()) == (0, minor), ran.stderr

    second = tmp_path / "second"
    second.mkdir()
    result, log = build(app, second, buildpack=buildpack)
    assert isinstance(result, CompiledSlug), log
    assert "Copying Python" not in log
    assert f"       Python {install.full} ({copy}/bin/python{minor})" in log.splitlines()

    # Without a request, the machine's own Python, whatever copies there are.
    third = tmp_path / "third"
    third.mkdir()
    result, log = build("flask-hello", third, buildpack=buildpack)
    assert isinstance(result, CompiledSlug), log
    assert f"-----> No Python version was specified. Using Python {machine_python()}" in log
