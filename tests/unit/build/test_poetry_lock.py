"""poetry.lock turned into hashed requirements: main packages only, with their markers."""

from __future__ import annotations

import pytest

from kapal.build.process import BuildFailed
from kapal.build.python.poetry import requirements


def package(name: str, version: str, extra: str = "") -> str:
    return f"""
[[package]]
name = "{name}"
version = "{version}"
optional = false
python-versions = ">=3.8"
files = [
    {{file = "{name}-{version}-py3-none-any.whl", hash = "sha256:{name[:1] * 64}"}},
]
{extra}"""


def lock_v2(*packages: str) -> str:
    """A lock of Poetry 1.5-1.8: no groups; the graph is in [package.dependencies]."""
    return "".join(packages) + '\n[metadata]\nlock-version = "2.0"\npython-versions = "^3.11"\n'


PYPROJECT_V1 = """
[tool.poetry]
name = "app"
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
Flask = "^3.0"
requests = { version = "^2.31", extras = ["socks"] }

[tool.poetry.group.dev.dependencies]
pytest = "^8"
"""

LOCK_V2 = lock_v2(
    package(
        "flask",
        "3.0.3",
        '[package.dependencies]\nwerkzeug = ">=3.0"\n'
        'colorama = {version = "*", markers = "platform_system == \\"Windows\\""}\n'
        'asgiref = {version = ">=3.2", optional = true}\n'
        '[package.extras]\nasync = ["asgiref (>=3.2)"]\n',
    ),
    package("Werkzeug", "3.0.4", '[package.dependencies]\nMarkupSafe = ">=2.1.1"\n'),
    package("markupsafe", "2.1.5"),
    package("colorama", "0.4.6"),
    package("asgiref", "3.8.1"),
    package(
        "requests",
        "2.32.3",
        '[package.dependencies]\nPySocks = {version = ">=1.5.6,!=1.5.7", optional = true}\n'
        'urllib3 = ">=1.21.1,<3"\n[package.extras]\nsocks = ["PySocks (>=1.5.6,!=1.5.7)"]\n'
        'use-chardet-on-py3 = ["chardet (>=3.0.2,<6)"]\n',
    ),
    package("pysocks", "1.7.1"),
    package("urllib3", "2.2.3"),
    package("pytest", "8.3.3", '[package.dependencies]\niniconfig = "*"\n'),
    package("iniconfig", "2.0.0"),
)


def joined(text: str) -> str:
    """The requirements with each one's continuation lines joined."""
    return text.replace(" \\\n    ", " ")


def lines(text: str) -> list[str]:
    return joined(text).splitlines()


def with_source(lock: str, name: str, source: str) -> str:
    """`lock` with a [package.source] table for `name` (whose files come last, on one line)."""
    start = lock.index(f'name = "{name}"')
    end = lock.index("]\n", lock.index("files = [", start)) + 2
    return lock[:end] + source + lock[end:]


def test_a_lock_without_groups_is_walked_from_the_main_dependencies() -> None:
    assert lines(requirements(PYPROJECT_V1, LOCK_V2)) == [
        f'colorama==0.4.6 ; platform_system == "Windows" --hash=sha256:{"c" * 64}',
        f"flask==3.0.3 --hash=sha256:{'f' * 64}",
        f"markupsafe==2.1.5 --hash=sha256:{'m' * 64}",
        f"pysocks==1.7.1 --hash=sha256:{'p' * 64}",  # requests[socks] asks for it
        f"requests==2.32.3 --hash=sha256:{'r' * 64}",
        f"urllib3==2.2.3 --hash=sha256:{'u' * 64}",
        f"Werkzeug==3.0.4 --hash=sha256:{'W' * 64}",
    ]  # not asgiref (flask[async] is not asked for), pytest or iniconfig (dev)


def test_an_optional_dependency_comes_only_with_its_extra() -> None:
    without = PYPROJECT_V1.replace('{ version = "^2.31", extras = ["socks"] }', '"^2.31"')
    assert "pysocks" not in requirements(without, LOCK_V2)


def test_markers_along_the_way_are_combined() -> None:
    pyproject = PYPROJECT_V1.replace(
        'Flask = "^3.0"', 'Flask = { version = "^3.0", markers = "python_version < \'3.13\'" }'
    )
    assert lines(requirements(pyproject, LOCK_V2))[0] == (
        "colorama==0.4.6 ; (platform_system == \"Windows\") and (python_version < '3.13') "
        f"--hash=sha256:{'c' * 64}"
    )
    assert "markupsafe==2.1.5 ; python_version < '3.13' --hash" in joined(
        requirements(pyproject, LOCK_V2)
    )


def test_a_package_needed_without_markers_by_one_path_has_none() -> None:
    lock = LOCK_V2.replace('MarkupSafe = ">=2.1.1"', 'MarkupSafe = ">=2.1.1"\ncolorama = "*"')
    assert f"colorama==0.4.6 --hash=sha256:{'c' * 64}" in lines(requirements(PYPROJECT_V1, lock))


def test_a_python_constraint_of_pyproject_becomes_a_marker() -> None:
    pyproject = PYPROJECT_V1.replace(
        'Flask = "^3.0"', 'Flask = { version = "^3.0", python = "^3.12" }'
    )
    assert (
        'flask==3.0.3 ; (python_version < "4") and (python_version >= "3.12") --hash'
        in requirements(pyproject, LOCK_V2).replace(" \\\n    ", " ")
    )


PYPROJECT_V2 = """
[project]
name = "app"
requires-python = ">=3.11"
dependencies = ["flask (>=3.0,<4.0)"]

[tool.poetry.group.dev.dependencies]
pytest = "^8"
"""

LOCK_V21 = """
[[package]]
name = "flask"
version = "3.0.3"
optional = false
python-versions = ">=3.8"
groups = ["main"]
files = [{file = "flask-3.0.3.tar.gz", hash = "sha256:aaaa"}]

[package.dependencies]
colorama = {version = "*", markers = "platform_system == \\"Windows\\""}

[[package]]
name = "colorama"
version = "0.4.6"
optional = false
python-versions = ">=3.7"
groups = ["main", "dev"]
markers = {main = "platform_system == \\"Windows\\"", dev = "sys_platform == \\"win32\\""}
files = [{file = "colorama-0.4.6.tar.gz", hash = "sha256:cccc"}]

[[package]]
name = "pytest"
version = "8.3.3"
optional = false
python-versions = ">=3.8"
groups = ["dev"]
files = [{file = "pytest-8.3.3.tar.gz", hash = "sha256:pppp"}]

[metadata]
lock-version = "2.1"
python-versions = ">=3.11"
content-hash = "abc"
"""


def test_a_poetry_2_lock_says_which_packages_the_main_group_needs() -> None:
    assert lines(requirements(PYPROJECT_V2, LOCK_V21)) == [
        'colorama==0.4.6 ; platform_system == "Windows" --hash=sha256:cccc',
        "flask==3.0.3 --hash=sha256:aaaa",
    ]


def test_a_poetry_2_lock_keeps_a_package_s_only_marker() -> None:
    lock = LOCK_V21.replace(
        'markers = {main = "platform_system == \\"Windows\\"", '
        'dev = "sys_platform == \\"win32\\""}',
        'markers = "python_version < \\"3.12\\""',
    )
    assert 'colorama==0.4.6 ; python_version < "3.12" --hash' in joined(
        requirements(PYPROJECT_V2, lock)
    )


@pytest.mark.parametrize(
    ("pyproject", "lock", "message"),
    [
        (
            PYPROJECT_V1.replace('Flask = "^3.0"', 'Flask = "^3.0"\ngunicorn = "^23"'),
            LOCK_V2,
            "poetry.lock is out of date: pyproject.toml needs gunicorn, which it does not lock.",
        ),
        (
            PYPROJECT_V2.replace('"flask (>=3.0,<4.0)"', '"flask", "gunicorn"'),
            LOCK_V21,
            "poetry.lock is out of date: pyproject.toml needs gunicorn, which it does not lock.",
        ),
        (
            PYPROJECT_V1,
            LOCK_V2.replace('urllib3 = ">=1.21.1,<3"', 'urllib3 = ">=1.21.1,<3"\nidna = "*"'),
            "poetry.lock is out of date: requests needs idna, which it does not lock.",
        ),
    ],
    ids=["poetry dependencies", "project dependencies", "a package's dependencies"],
)
def test_a_stale_lock_is_refused(pyproject: str, lock: str, message: str) -> None:
    with pytest.raises(BuildFailed) as failed:
        requirements(pyproject, lock)
    assert failed.value.message == message
    assert "poetry lock" in failed.value.hint


GIT = '\n[package.source]\ntype = "git"\nurl = "https://token@example.com/x.git"\n'


@pytest.mark.parametrize(
    ("pyproject", "lock", "name"),
    [
        (
            PYPROJECT_V1,
            with_source(LOCK_V2, "markupsafe", GIT),
            "markupsafe",
        ),
        (PYPROJECT_V2, with_source(LOCK_V21, "flask", GIT), "flask"),
    ],
    ids=["lock-version 2.0", "lock-version 2.1"],
)
def test_a_package_from_git_is_refused_by_name(pyproject: str, lock: str, name: str) -> None:
    with pytest.raises(BuildFailed) as failed:
        requirements(pyproject, lock)
    assert failed.value.message == (
        f"poetry.lock: {name} comes from a git repository; Kapal installs only packages "
        "from a package index."
    )
    assert "token" not in failed.value.message


def test_a_git_package_only_dev_needs_does_not_matter() -> None:
    lock = with_source(LOCK_V2, "iniconfig", GIT)
    assert "iniconfig" not in requirements(PYPROJECT_V1, lock)


def test_a_private_index_is_passed_on() -> None:
    source = '[package.source]\ntype = "legacy"\nurl = "https://pkgs.example.com/simple"\n'
    lock = with_source(LOCK_V21, "flask", source)
    assert requirements(PYPROJECT_V2, lock).startswith(
        "--extra-index-url https://pkgs.example.com/simple\n"
    )


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        ("[[package]\n", "poetry.lock is not valid TOML"),
        ('[metadata]\nlock-version = "3.0"\n', "poetry.lock has lock-version '3.0'"),
    ],
)
def test_a_lock_kapal_cannot_read_is_refused(lock: str, message: str) -> None:
    with pytest.raises(BuildFailed, match=message):
        requirements(PYPROJECT_V1, lock)
