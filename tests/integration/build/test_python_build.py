"""The Python buildpack for real: uv installs the sample apps' requirements into a slug."""

from __future__ import annotations

import asyncio
import subprocess
import tarfile
from pathlib import Path

import pytest
from uv import find_uv_bin

from kapal.build.buildpack import CompileDirs
from kapal.build.compiler import CompiledSlug, compile_slug
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed
from kapal.build.python import PythonBuildpack
from kapal.build.slugs import SlugStore, slug_path

APPS = Path(__file__).parents[2] / "apps"


def tarball_of(sample: str, tmp_path: Path) -> Path:
    target = tmp_path / f"{sample}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted((APPS / sample).iterdir()):
            tar.add(path, arcname=path.name)
    return target


def build(sample: str, tmp_path: Path) -> tuple[CompiledSlug | BuildFailed, str]:
    out = BuildOutput(tmp_path / "build.log")
    dirs = CompileDirs(tmp_path / "build", tmp_path / "cache")
    buildpack = PythonBuildpack("/usr/bin/python3", find_uv_bin())
    store = SlugStore(tmp_path / "slugs", 500 * 1024 * 1024)
    result: CompiledSlug | BuildFailed
    try:
        result = asyncio.run(
            compile_slug(tarball_of(sample, tmp_path), dirs, out, [buildpack], store)
        )
    except BuildFailed as exc:
        result = exc
    out.close()
    return result, (tmp_path / "build.log").read_text()


def test_flask_hello_builds_a_relocatable_slug(tmp_path: Path) -> None:
    result, log = build("flask-hello", tmp_path)
    assert isinstance(result, CompiledSlug), log
    lines = log.splitlines()
    assert lines[0] == "-----> Python app detected"
    assert lines[1].startswith("-----> Using Python 3.")
    assert lines[2].startswith("-----> Installing dependencies with uv 0.")
    assert any(line.startswith("        + flask==") for line in lines), log
    assert "       Procfile declares types -> web" in lines
    assert result.process_types == {"web": "gunicorn app:app --bind 127.0.0.1:$PORT"}

    # Unpacked somewhere else entirely, the virtualenv still runs the app's dependencies.
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    with tarfile.open(slug_path(tmp_path / "slugs", result.checksum)) as tar:
        tar.extractall(elsewhere, filter="tar")
    assert (elsewhere / ".profile.d" / "python.sh").read_text().startswith("#")
    check = subprocess.run(
        [
            "/bin/sh",
            "-c",
            ". .profile.d/python.sh && gunicorn --version && python -c 'import flask'",
        ],
        cwd=elsewhere,
        env={"HOME": str(elsewhere), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert "gunicorn" in check.stdout


def test_a_missing_package_fails_with_uvs_own_words(tmp_path: Path) -> None:
    result, log = build("failing-requirements", tmp_path)
    assert isinstance(result, BuildFailed)
    assert "kapal-no-such-package-0f3c9b" in log
    assert "       error: No solution found when resolving dependencies" in log
    assert log.splitlines()[-1] == " !     Push rejected, failed to compile Python app."
    assert not (tmp_path / "slugs").exists()


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("no-procfile", " !     No Procfile found in the root of the app."),
        ("bad-procfile", ' !     Procfile line 2: expected "<process type>: <command>"'),
    ],
)
def test_procfile_problems_fail_the_build(sample: str, expected: str, tmp_path: Path) -> None:
    result, log = build(sample, tmp_path)
    assert isinstance(result, BuildFailed)
    assert expected in log
    assert "Installing dependencies" not in log  # reported before the slow part
