from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kapal.build.buildpack import CompileDirs
from kapal.build.compiler import declared_types, read_procfile
from kapal.build.process import BuildFailed
from kapal.build.python import PythonBuildpack
from kapal.build.python.buildpack import package_manager

PYTHON = PythonBuildpack("/usr/bin/python3", "uv")


def detect(build_dir: Path) -> str | None:
    return asyncio.run(PYTHON.detect(build_dir))


def test_python_is_detected_by_requirements_txt(tmp_path: Path) -> None:
    assert detect(tmp_path) is None
    (tmp_path / "app.py").write_text("")
    assert detect(tmp_path) is None
    (tmp_path / "requirements.txt").write_text("flask\n")
    assert detect(tmp_path) == "Python"


@pytest.mark.parametrize(
    "name", ["Pipfile.lock", "poetry.lock", "uv.lock", "Pipfile", "pyproject.toml"]
)
def test_other_python_files_are_detected(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("")
    assert detect(tmp_path) == "Python"  # not "no language detected"


@pytest.mark.parametrize("name", ["requirements.txt", "Pipfile.lock", "poetry.lock", "uv.lock"])
def test_the_package_managers_kapal_installs_with(name: str) -> None:
    assert package_manager([name, "Pipfile", "pyproject.toml"]) == name


@pytest.mark.parametrize(
    ("found", "message", "hint"),
    [
        (["poetry.lock"], "poetry.lock was found, but no pyproject.toml.", "pyproject.toml"),
        (["Pipfile"], "A Pipfile was found, but no Pipfile.lock.", "pipenv lock"),
        (["pyproject.toml"], "no lock file or requirements.txt to install from", "uv lock"),
        ([], "No requirements.txt was found in the root of the app.", ""),
    ],
)
def test_files_kapal_cannot_install_from_are_refused_clearly(
    found: list[str], message: str, hint: str
) -> None:
    with pytest.raises(BuildFailed) as failed:
        package_manager(found)
    assert message in failed.value.message
    assert hint in failed.value.hint


def test_several_package_managers_are_refused_naming_their_files() -> None:
    with pytest.raises(BuildFailed) as failed:
        package_manager(["requirements.txt", "poetry.lock", "uv.lock"])
    assert failed.value.message == (
        "Multiple Python package manager files were found: requirements.txt, poetry.lock, uv.lock."
    )


def test_a_directory_named_requirements_txt_is_not_python(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").mkdir()
    assert detect(tmp_path) is None


def test_build_env_is_explicit_and_carries_no_platform_secrets(tmp_path: Path) -> None:
    env = PYTHON.env(CompileDirs(tmp_path / "build", tmp_path / "cache"))
    assert env["UV_CACHE_DIR"] == str(tmp_path / "cache" / "uv")
    assert env["UV_PYTHON_DOWNLOADS"] == "never"
    assert not [key for key in env if key.startswith("KAPAL")]


def test_procfile_types_are_read_and_listed_sorted(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text(
        "# comment\nweb: gunicorn app:app\nrelease: python manage.py migrate\n"
    )
    types = read_procfile(tmp_path)
    assert types == {"web": "gunicorn app:app", "release": "python manage.py migrate"}
    assert declared_types(types) == "Procfile declares types -> release, web"
    assert declared_types({}) == "Procfile declares types -> (none)"


def test_a_missing_procfile_declares_nothing(tmp_path: Path) -> None:
    assert read_procfile(tmp_path) is None


def test_malformed_procfile_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: ok\nworker python worker.py\n")
    with pytest.raises(BuildFailed, match="Procfile line 2"):
        read_procfile(tmp_path)


def test_procfile_must_be_text(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_bytes(b"web: \xff\xfe\n")
    with pytest.raises(BuildFailed, match="UTF-8"):
        read_procfile(tmp_path)
