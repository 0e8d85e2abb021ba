"""When Django's collectstatic runs, and with what: manage.py's place, the switch to turn it
off, and the config vars it sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapal.build.python.django import command_env, disabled, find_manage_py


def touch(root: Path, *paths: str) -> None:
    for relative in paths:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def test_manage_py_nearest_the_root_wins(tmp_path: Path) -> None:
    assert find_manage_py(tmp_path) is None
    touch(tmp_path, "b/c/manage.py")
    assert find_manage_py(tmp_path) == "b/c/manage.py"
    touch(tmp_path, "z/manage.py", "a/manage.py")
    assert find_manage_py(tmp_path) == "a/manage.py"
    touch(tmp_path, "manage.py")
    assert find_manage_py(tmp_path) == "manage.py"


def test_manage_py_is_looked_for_three_levels_deep_outside_hidden_dirs(tmp_path: Path) -> None:
    touch(tmp_path, "a/b/c/manage.py", ".venv/manage.py", ".git/x/manage.py")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "manage.py").mkdir()  # not a file
    assert find_manage_py(tmp_path) is None


def test_links_are_not_followed(tmp_path: Path) -> None:
    touch(tmp_path, "elsewhere/manage.py")
    app = tmp_path / "app"
    app.mkdir()
    (app / "linked").symlink_to(tmp_path / "elsewhere")
    (app / "manage.py").symlink_to(tmp_path / "elsewhere" / "manage.py")
    assert find_manage_py(app) is None


@pytest.mark.parametrize(
    ("value", "off"),
    [(None, False), ("", False), ("0", False), ("1", True), ("true", True), (" 1 ", True)],
)
def test_disable_collectstatic(value: str | None, off: bool) -> None:
    config = {} if value is None else {"DISABLE_COLLECTSTATIC": value}
    assert disabled(config) is off


def test_config_vars_reach_the_command_but_not_over_the_build_toolchain() -> None:
    base = {"PATH": "/build/.venv/bin:/usr/bin", "HOME": "/cache", "LANG": "C.UTF-8"}
    config = {
        "DATABASE_URL": "postgres://x",
        "LANG": "en_GB.UTF-8",
        "PATH": "/evil",
        "HOME": "/elsewhere",
        "LD_PRELOAD": "/evil.so",
        "PYTHONHOME": "/nowhere",
    }
    assert command_env(base, config) == {
        "PATH": "/build/.venv/bin:/usr/bin",
        "HOME": "/cache",
        "LANG": "en_GB.UTF-8",
        "DATABASE_URL": "postgres://x",
        "PYTHONDONTWRITEBYTECODE": "1",  # stale in the slug: not written at all
    }
