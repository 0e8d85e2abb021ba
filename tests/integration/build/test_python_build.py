"""The Python buildpack for real: uv installs the sample apps' requirements into a slug."""

from __future__ import annotations

import asyncio
import functools
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from uv import find_uv_bin

from kapal import tarballs
from kapal.build.buildpack import CompileDirs
from kapal.build.compiler import CompiledSlug, compile_slug
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed
from kapal.build.python import PythonBuildpack
from kapal.build.slugs import SlugStore, slug_path

APPS = Path(__file__).parents[2] / "apps"
REJECTED = " !     Push rejected, failed to compile Python app."


@functools.cache
def machine_python() -> str:
    """The minor version of /usr/bin/python3, the default Python for builds."""
    return subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


@pytest.fixture
def tmp_path(open_dir: Path) -> Path:
    """As root, uv runs as kapal-dyno, which must reach the build and cache directories."""
    return open_dir


def tarball_of(sample: str | Path, tmp_path: Path) -> Path:
    source = APPS / sample
    target = tmp_path / f"{source.name}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name)
    return target


def app_with(sample: str, tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of a sample app with some files added."""
    app = tmp_path / "app"
    shutil.copytree(APPS / sample, app)
    for name, text in files.items():
        (app / name).write_text(text)
    return app


@pytest.fixture(scope="module")
def django_cache() -> Iterator[Path]:
    """One build cache for the Django builds here: Django is downloaded once."""
    path = Path(tempfile.mkdtemp(prefix="kapal-test-"))
    path.chmod(0o711)
    yield path / "cache"
    shutil.rmtree(path, ignore_errors=True)


def build(
    sample: str | Path,
    tmp_path: Path,
    config_vars: dict[str, str] | None = None,
    cache: Path | None = None,
    buildpack: PythonBuildpack | None = None,
) -> tuple[CompiledSlug | BuildFailed, str]:
    out = BuildOutput(tmp_path / "build.log")
    dirs = CompileDirs(tmp_path / "build", cache or tmp_path / "cache", config_vars or {})
    # As kapal-dyno when root.
    buildpack = buildpack or PythonBuildpack("/usr/bin/python3", find_uv_bin())
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
    assert re.fullmatch(r"-----> No Python version was specified\. Using Python 3\.\d+", lines[1])
    assert re.fullmatch(r"       Python 3\.\d+\.\d+\S* \(/\S+\)", lines[2]), lines[2]
    assert lines[3].startswith("-----> Installing dependencies with uv 0.")
    assert "collectstatic" not in log  # not a Django app
    assert any(line.startswith("        + flask==") for line in lines), log
    assert "       Procfile declares types -> web" in lines
    assert result.process_types == {"web": "gunicorn app:app --bind 127.0.0.1:$PORT"}

    # Unpacked somewhere else entirely, the virtualenv still runs the app's dependencies.
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    with tarfile.open(slug_path(tmp_path / "slugs", result.checksum)) as tar:
        tarballs.extract(tar, elsewhere, lambda member: None)
    assert (elsewhere / ".profile.d" / "python.sh").read_text().startswith("#")
    check = subprocess.run(
        [
            "/bin/sh",
            "-c",
            ". .profile.d/python.sh && gunicorn --version && python -c 'import flask' "
            '&& echo "workers=$WEB_CONCURRENCY"',
        ],
        cwd=elsewhere,
        env={"HOME": str(elsewhere), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert "gunicorn" in check.stdout
    assert re.search(r"^workers=[1-9]\d*$", check.stdout, re.M), check.stdout


def test_a_missing_package_fails_with_uvs_own_words(tmp_path: Path) -> None:
    result, log = build("failing-requirements", tmp_path)
    assert isinstance(result, BuildFailed)
    assert "kapal-no-such-package-0f3c9b" in log
    assert "       error: No solution found when resolving dependencies" in log
    assert log.splitlines()[-1] == REJECTED
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


# An in-tree PEP 517 backend (no downloads): the code an sdist runs at install time. It looks
# around, leaves its findings in the app, and plants a link where the platform writes next.
BACKEND = """\
import base64, hashlib, os, zipfile

SECRET = {secret!r}
BUILD_DIR = {build_dir!r}


def _probe():
    found = [f"uid={{os.getuid()}} gid={{os.getgid()}} groups={{sorted(os.getgroups())}}"]
    try:
        open(SECRET).read()
        found.append("read the secret")
    except PermissionError:
        found.append("secret: permission denied")
    with open(os.path.join(BUILD_DIR, "probe.txt"), "w") as f:
        f.write("\\n".join(found) + "\\n")
    os.makedirs(os.path.join(BUILD_DIR, ".profile.d"), exist_ok=True)
    link = os.path.join(BUILD_DIR, ".profile.d", "python.sh")
    if not os.path.lexists(link):
        os.symlink(SECRET, link)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _probe()
    name = "probe-0.1-py3-none-any.whl"
    files = {{
        "probe-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: probe\\nVersion: 0.1\\n",
        "probe-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: probe\\n"
        b"Root-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append("probe-0.1.dist-info/RECORD,,")
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        for path, data in files.items():
            whl.writestr(path, data)
        whl.writestr("probe-0.1.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="builds drop privileges only when run as root")
def test_install_time_code_runs_unprivileged(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("the platform's\n")
    secret.chmod(0o600)
    app = tmp_path / "app"
    (app / "probe").mkdir(parents=True)
    (app / "requirements.txt").write_text("./probe\n")
    (app / "Procfile").write_text("web: python -m http.server $PORT\n")
    (app / "probe" / "pyproject.toml").write_text(
        '[project]\nname = "probe"\nversion = "0.1"\n\n'
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    (app / "probe" / "backend.py").write_text(
        BACKEND.format(secret=str(secret), build_dir=str(tmp_path / "build"))
    )
    result, log = build(app, tmp_path)
    assert isinstance(result, CompiledSlug), log
    dyno_user = pwd.getpwnam("kapal-dyno")
    probe = (tmp_path / "build" / "probe.txt").read_text().splitlines()
    assert probe == [
        f"uid={dyno_user.pw_uid} gid={dyno_user.pw_gid} groups=[]",  # none of root's
        "secret: permission denied",
    ]
    # The link planted at .profile.d/python.sh was replaced, not written through.
    assert secret.read_text() == "the platform's\n"
    assert secret.stat().st_uid == 0
    with tarfile.open(slug_path(tmp_path / "slugs", result.checksum)) as tar:
        profile = tar.getmember(".profile.d/python.sh")
        assert profile.isreg() and profile.mode == 0o644
        venv = tar.getmember(".venv/bin/python")
        assert venv.issym()
    assert (tmp_path / "build" / ".venv").stat().st_uid == dyno_user.pw_uid
    assert (tmp_path / "cache").stat().st_uid == dyno_user.pw_uid


def test_python_version_file_chooses_the_interpreter(tmp_path: Path) -> None:
    minor = machine_python()
    result, log = build(app_with("flask-hello", tmp_path, {".python-version": minor}), tmp_path)
    assert isinstance(result, CompiledSlug), log
    assert log.splitlines()[1] == f"-----> Using Python {minor} specified in .python-version"
    venv = (tmp_path / "build" / ".venv" / "pyvenv.cfg").read_text()
    assert re.search(rf"^version_info = {re.escape(minor)}\.\d+", venv, re.M), venv


def test_an_unavailable_python_version_rejects_the_push(tmp_path: Path) -> None:
    app = app_with("flask-hello", tmp_path, {".python-version": "# pinned\n3.99\n"})
    result, log = build(app, tmp_path)
    assert isinstance(result, BuildFailed)
    lines = log.splitlines()
    assert re.fullmatch(
        r" !     Python 3\.99 is not available here\. Available: 3\.\d+(, 3\.\d+)*\.", lines[1]
    ), log
    assert f" {machine_python()}" in lines[1]
    assert lines[2:] == ["       HINT: name one of them in .python-version.", REJECTED]
    assert not (tmp_path / "slugs").exists()


def slug_names(tmp_path: Path, slug: CompiledSlug) -> set[str]:
    with tarfile.open(slug_path(tmp_path / "slugs", slug.checksum)) as tar:
        return set(tar.getnames())


def test_django_static_files_are_collected_into_the_slug(
    tmp_path: Path, django_cache: Path
) -> None:
    result, log = build("django-static", tmp_path, cache=django_cache)
    assert isinstance(result, CompiledSlug), log
    lines = log.splitlines()
    ran = lines.index("-----> $ python manage.py collectstatic --noinput")
    assert lines.index("-----> Discovering process types") > ran > 3
    assert any(re.fullmatch(r"       1 static file copied to '.*'\.", line) for line in lines), log
    collected = "staticfiles/css/kapal.css"
    assert collected in slug_names(tmp_path, result)
    original = (APPS / "django-static" / "static" / "css" / "kapal.css").read_bytes()
    assert (tmp_path / "build" / collected).read_bytes() == original
    if os.geteuid() == 0:  # the app's code ran as the build user
        owner = (tmp_path / "build" / collected).stat().st_uid
        assert owner == pwd.getpwnam("kapal-dyno").pw_uid


def test_disable_collectstatic_skips_it(tmp_path: Path, django_cache: Path) -> None:
    result, log = build("django-static", tmp_path, {"DISABLE_COLLECTSTATIC": "1"}, django_cache)
    assert isinstance(result, CompiledSlug), log
    assert (
        "-----> Skipping Django collectstatic since the config var DISABLE_COLLECTSTATIC is set."
        in log.splitlines()
    )
    assert "collectstatic --noinput" not in log
    assert not [name for name in slug_names(tmp_path, result) if name.startswith("staticfiles")]


def test_a_failing_collectstatic_fails_the_build_and_says_how_to_skip_it(
    tmp_path: Path, django_cache: Path
) -> None:
    # The config var reaches the app's settings, which then have no STATIC_ROOT.
    result, log = build("django-static", tmp_path, {"NO_STATIC_ROOT": "1"}, django_cache)
    assert isinstance(result, BuildFailed)
    lines = log.splitlines()
    assert "-----> $ python manage.py collectstatic --noinput" in lines
    assert any(  # Django's own words, in the log
        line.startswith("       django.core.exceptions.ImproperlyConfigured: ") for line in lines
    ), log
    assert lines[-5:] == [
        " !     Error while running '$ python manage.py collectstatic --noinput'.",
        "       See the output above for the cause. To deploy without collecting static files",
        "       at build time, disable this step:",
        "       $ kapal config:set DISABLE_COLLECTSTATIC=1",
        REJECTED,
    ]
    assert not (tmp_path / "slugs").exists()


def test_the_django_sample_app_collects_its_static_files(
    tmp_path: Path, django_cache: Path
) -> None:
    # tests/apps/django-hello is what the end-to-end tests deploy.
    result, log = build("django-hello", tmp_path, cache=django_cache)
    assert isinstance(result, CompiledSlug), log
    assert "-----> $ python manage.py collectstatic --noinput" in log
    assert "       0 static files copied to " in log


RETRY = "-----> Trying again with an empty build cache, in case the cache is why"


def test_a_damaged_cache_is_replaced_and_the_build_succeeds(tmp_path: Path) -> None:
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for path in (first, second, third):
        path.mkdir()
    cache = tmp_path / "cache"
    result, log = build("flask-hello", first, cache=cache)
    assert isinstance(result, CompiledSlug), log
    assert RETRY not in log
    # Unpacked wheels whose files are gone: uv cannot install from them.
    archives = list((cache / "uv").glob("archive-v*/*"))
    assert archives
    for archive in archives:
        shutil.rmtree(archive)
        archive.mkdir()

    result, log = build("flask-hello", second, cache=cache)

    assert isinstance(result, CompiledSlug), log
    lines = log.splitlines()
    retried = lines.index(RETRY)
    assert any("Failed to install" in line for line in lines[:retried]), log
    assert "-----> Discovering process types" in lines[retried:]
    # The fresh cache took the damaged one's place, and the next build uses it at once.
    assert not (cache / "uv.fresh").exists()
    result, log = build("flask-hello", third, cache=cache)
    assert isinstance(result, CompiledSlug), log
    assert RETRY not in log


def test_a_real_mistake_keeps_the_warm_cache(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    cache = tmp_path / "cache"
    result, log = build("flask-hello", first, cache=cache)
    assert isinstance(result, CompiledSlug), log
    before = sorted(p.name for p in (cache / "uv").glob("archive-v*/*"))

    result, log = build("failing-requirements", second, cache=cache)

    assert isinstance(result, BuildFailed)
    assert RETRY in log  # it could have been the cache
    assert sorted(p.name for p in (cache / "uv").glob("archive-v*/*")) == before
    assert not (cache / "uv.fresh").exists()


def site_packages(tmp_path: Path) -> set[str]:
    (lib,) = (tmp_path / "build" / ".venv" / "lib").iterdir()
    return {path.name for path in (lib / "site-packages").iterdir()}


@pytest.mark.parametrize("sample", ["uv-hello", "pipenv-hello", "poetry-hello"])
def test_lock_files_install_their_default_packages_only(sample: str, tmp_path: Path) -> None:
    result, log = build(sample, tmp_path)
    assert isinstance(result, CompiledSlug), log
    installed = site_packages(tmp_path)
    assert "six.py" in installed  # poetry-hello: python-dateutil's dependency
    assert not any(name.startswith("iniconfig") for name in installed)  # a dev dependency
    assert not any(name.startswith("colorama") for name in installed)  # poetry-hello: win32


def test_a_poetry_lock_is_installed_with_its_hashes(tmp_path: Path) -> None:
    lock = (APPS / "poetry-hello" / "poetry.lock").read_text()
    changed = lock.replace("sha256:a8b2bc7b", "sha256:00000000")
    result, log = build(app_with("poetry-hello", tmp_path, {"poetry.lock": changed}), tmp_path)
    assert isinstance(result, BuildFailed)
    assert "Hash mismatch" in log, log
    assert " !     Could not install the dependencies in poetry.lock (uv exited with status" in log


def test_a_uv_lock_out_of_date_with_pyproject_rejects_the_push(tmp_path: Path) -> None:
    pyproject = (APPS / "uv-hello" / "pyproject.toml").read_text()
    changed = pyproject.replace('"six==1.17.0"', '"six==1.16.0"')
    result, log = build(app_with("uv-hello", tmp_path, {"pyproject.toml": changed}), tmp_path)
    assert isinstance(result, BuildFailed)
    assert "The lockfile at `uv.lock` needs to be updated" in log
    assert " !     Could not install the dependencies in uv.lock (uv exited with status 1)." in log
    assert log.splitlines()[-1] == REJECTED
