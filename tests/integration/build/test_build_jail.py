"""The Python buildpack in a build jail: uv builds the app at /app, as an app's uid, and the
slug's virtualenv runs where dynos run it, at /app in a bubblewrap jail."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from tests.integration.build.test_python_build import RETRY, tarball_of
from uv import find_uv_bin

from kapal import tarballs
from kapal.build.buildpack import CompileDirs
from kapal.build.compiler import CompiledSlug, compile_slug
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed
from kapal.build.python import PythonBuildpack
from kapal.build.sandbox import BuildSandbox
from kapal.build.slugs import SlugStore, slug_path
from kapal.domain.uids import APP_UID_BASE
from kapal.sandbox.build_jail import Bind, BuildJail
from kapal.system_users import RunAs

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None,
    reason="builds are jailed only when Kapal is root and bubblewrap is installed",
)

UID = APP_UID_BASE + 900_001  # above the apps a test Kapal makes


def jailed_build(
    sample: str, open_dir: Path, user: RunAs, cache: Path | None = None
) -> tuple[CompiledSlug | BuildFailed, str, BuildJail]:
    """`sample` built by the Python buildpack in a jail, as `user`, in `open_dir`."""
    sandbox = BuildSandbox(None, open_dir / "sandbox")
    build_dir, cache = open_dir / "build", cache or open_dir / "cache"
    uv = find_uv_bin()
    jail = sandbox.jail(user, build_dir, [Bind(cache, writable=True), Bind(Path(uv))])
    assert jail is not None, "bubblewrap does not work here (see the log)"
    buildpack = PythonBuildpack("/usr/bin/python3", uv, build_user=lambda: user, jail=jail)
    out = BuildOutput(open_dir / "build.log")
    store = SlugStore(open_dir / "slugs", 500 * 1024 * 1024)
    source = tarball_of(sample, open_dir)
    result: CompiledSlug | BuildFailed
    try:
        result = asyncio.run(
            compile_slug(source, CompileDirs(build_dir, cache), out, [buildpack], store)
        )
    except BuildFailed as exc:
        result = exc
    finally:
        out.close()
    return result, (open_dir / "build.log").read_text(), jail


def test_a_jailed_python_build_makes_a_slug_that_runs_at_slash_app(open_dir: Path) -> None:
    user = RunAs("test app", UID, UID)
    result, log, jail = jailed_build("flask-hello", open_dir, user)
    assert isinstance(result, CompiledSlug), log
    build_dir, cache = open_dir / "build", open_dir / "cache"
    assert (build_dir / ".venv").stat().st_uid == UID
    assert cache.stat().st_uid == UID
    # Built at /app: nothing in the slug names where the build directory is on the machine.
    for path in build_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert str(build_dir).encode() not in path.read_bytes(), path

    # Unpacked elsewhere and shown at /app in a jail, as dynos run it.
    release = open_dir / "release"
    release.mkdir()
    with tarfile.open(slug_path(open_dir / "slugs", result.checksum)) as tar:
        tarballs.extract(tar, release, lambda member: None)
    user.hand_over(release)
    dyno = BuildJail(jail.bwrap, release, etc=jail.etc)
    argv, env = dyno.wrap(
        [
            "/bin/sh",
            "-c",
            ". .profile.d/python.sh && gunicorn --version "
            "&& python -c 'import flask, sys; print(sys.prefix)'",
        ],
        {"HOME": "/app", "PATH": "/usr/bin:/bin"},
        release,
    )
    check = subprocess.run(
        argv,
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        **user.spawn_options(0o22),
    )
    assert check.returncode == 0, check.stderr
    assert "gunicorn" in check.stdout
    assert check.stdout.splitlines()[-1] == "/app/.venv"


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("pipenv-hello", "-----> Installing dependencies with uv "),  # uv runs pipenv
        ("poetry-hello", "        + python-dateutil==2.9.0.post0"),  # exported in the cache
        ("django-static", "       1 static file copied to '/app/staticfiles'."),
    ],
)
def test_lock_files_and_collectstatic_work_in_the_jail(
    sample: str, expected: str, open_dir: Path
) -> None:
    result, log, _ = jailed_build(sample, open_dir, RunAs("test app", UID, UID))
    assert isinstance(result, CompiledSlug), log
    assert any(line.startswith(expected) for line in log.splitlines()), log


def test_the_retry_with_an_empty_cache_works_in_the_jail(open_dir: Path) -> None:
    user = RunAs("test app", UID, UID)
    cache = open_dir / "cache"
    first, second = open_dir / "first", open_dir / "second"
    for path in (first, second):
        path.mkdir()
        path.chmod(0o711)
    result, log, _ = jailed_build("flask-hello", first, user, cache)
    assert isinstance(result, CompiledSlug), log
    archives = list((cache / "uv").glob("archive-v*/*"))
    assert archives
    for archive in archives:  # unpacked wheels whose files are gone
        shutil.rmtree(archive)
        archive.mkdir()

    result, log, _ = jailed_build("flask-hello", second, user, cache)

    assert isinstance(result, CompiledSlug), log
    assert RETRY in log.splitlines()
    assert not (cache / "uv.fresh").exists()
    assert any((cache / "uv").glob("archive-v*/*/flask"))
