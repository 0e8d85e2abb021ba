"""Which Python an app asks for and which available interpreter serves it: pure functions from
the files' contents and the interpreters found to a decision or a build failure."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet

from kapal.build.process import BuildFailed
from kapal.build.python.versions import (
    Interpreter,
    available_minors,
    choose,
    parse_specifier,
    requested_version,
)

PY311 = Interpreter("/usr/bin/python3.11", (3, 11, 2), "3.11.2")
PY312 = Interpreter("/usr/local/bin/python3.12", (3, 12, 4), "3.12.4")
PY313 = Interpreter("/usr/local/bin/python3.13", (3, 13, 1), "3.13.1")
HERE = [PY311, PY313, PY312]


def decide(files: dict[str, str], available: list[Interpreter] = HERE) -> tuple[str, str]:
    """(announcement, interpreter path) for these files, or the failure's message."""
    choice = choose(requested_version({k: v.encode() for k, v in files.items()}), available)
    return choice.announcement, choice.interpreter.path


def failure(files: dict[str, str | bytes], available: list[Interpreter] = HERE) -> BuildFailed:
    raw = {k: v if isinstance(v, bytes) else v.encode() for k, v in files.items()}
    with pytest.raises(BuildFailed) as failed:
        choose(requested_version(raw), available)
    return failed.value


def test_without_a_request_the_newest_available_is_used() -> None:
    assert decide({}) == ("No Python version was specified. Using Python 3.13", PY313.path)


@pytest.mark.parametrize(
    ("text", "shown", "chosen"),
    [
        ("3.12\n", "3.12", PY312),
        ("3.12.4", "3.12.4", PY312),
        ("3.11", "3.11", PY311),
        ("# the team's Python\n\n  3.11  \n3.13\n", "3.11", PY311),  # first non-comment line
    ],
)
def test_python_version_file(text: str, shown: str, chosen: Interpreter) -> None:
    assert decide({".python-version": text}) == (
        f"Using Python {shown} specified in .python-version",
        chosen.path,
    )


def test_a_minor_version_takes_the_newest_patch_release() -> None:
    older = Interpreter("/opt/python3.12", (3, 12, 1), "3.12.1")
    assert decide({".python-version": "3.12"}, [older, PY312])[1] == PY312.path
    assert decide({".python-version": "3.12.1"}, [older, PY312])[1] == older.path


def test_an_unavailable_version_is_refused_listing_what_is_here() -> None:
    refused = failure({".python-version": "3.14\n"})
    assert refused.message == "Python 3.14 is not available here. Available: 3.13, 3.12, 3.11."
    assert refused.hint == "HINT: name one of them in .python-version."
    # A patch release must match exactly.
    refused = failure({".python-version": "3.12.9"})
    assert refused.message == "Python 3.12.9 is not available here. Available: 3.13, 3.12, 3.11."


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("python-3.12", "'python-3.12'"),
        ("3", "'3'"),
        ("3.12.x", "'3.12.x'"),
        ("3.12.1.4", "'3.12.1.4'"),
        ("cpython@3.12", "'cpython@3.12'"),
        ("3.12 # latest", "'3.12 # latest'"),
        ("3" * 100, "'" + "3" * 57 + "...'"),
    ],
)
def test_a_malformed_python_version_file_is_named_with_its_value(text: str, shown: str) -> None:
    refused = failure({".python-version": text})
    assert refused.message == f"Invalid Python version in .python-version: {shown}."
    assert "3.12.1" in refused.hint


def test_a_python_version_file_without_a_version_is_refused() -> None:
    refused = failure({".python-version": "# nothing yet\n\n"})
    assert refused.message == ".python-version does not name a Python version."
    assert failure({".python-version": b"\xff3.12"}).message == (
        ".python-version is not valid UTF-8 text."
    )


def test_runtime_txt() -> None:
    assert decide({"runtime.txt": "python-3.12.4\n"}) == (
        "Using Python 3.12.4 specified in runtime.txt",
        PY312.path,
    )
    assert decide({"runtime.txt": "python-3.11"})[1] == PY311.path
    refused = failure({"runtime.txt": "3.12.4"})
    assert refused.message == "Invalid Python version in runtime.txt: '3.12.4'."
    assert failure({"runtime.txt": "python-3.10"}).message.startswith(
        "Python 3.10 is not available here."
    )


def pyproject(spec: str) -> dict[str, str]:
    return {"pyproject.toml": f'[project]\nname = "app"\nrequires-python = "{spec}"\n'}


@pytest.mark.parametrize(
    ("spec", "chosen"),
    [
        (">=3.11", PY313),
        (">=3.10,<3.13", PY312),
        ("==3.11.*", PY311),
        ("~=3.11", PY313),
        ("~=3.11.0", PY311),
        (">=3.11, !=3.13.*", PY312),
        ("<=3.12.4", PY312),
        (">3.11.2,<3.13", PY312),
    ],
)
def test_pyproject_requires_python_takes_the_newest_it_allows(
    spec: str, chosen: Interpreter
) -> None:
    assert decide(pyproject(spec)) == (
        f"Using Python {chosen.minor} specified in pyproject.toml",
        chosen.path,
    )


def test_pyproject_without_requires_python_is_no_request() -> None:
    assert decide({"pyproject.toml": '[project]\nname = "app"\n'})[1] == PY313.path
    assert decide({"pyproject.toml": "[tool.ruff]\nline-length = 100\n"})[1] == PY313.path
    assert decide(pyproject(" "))[1] == PY313.path


def test_pyproject_problems_are_named() -> None:
    refused = failure(pyproject(">=3.14"))
    assert refused.message == "Python >=3.14 is not available here. Available: 3.13, 3.12, 3.11."
    assert (
        refused.hint == "HINT: name one of them in .python-version, which overrides pyproject.toml."
    )
    unreadable = failure(pyproject(">=3.12a1"))
    assert unreadable.message == (
        "Cannot read requires-python in pyproject.toml: '>=3.12a1' is not a version specifier "
        "Kapal understands."
    )
    assert failure(pyproject("==3.11,>=3.*")).message.startswith(
        "Cannot read requires-python in pyproject.toml: '>=3.*'"
    )
    assert failure({"pyproject.toml": "[project\n"}).message.startswith(
        "pyproject.toml is not valid TOML: "
    )
    assert failure({"pyproject.toml": "[project]\nrequires-python = 3.12\n"}).message == (
        "requires-python in pyproject.toml must be a string."
    )


def test_the_first_file_present_decides_and_later_ones_are_not_read() -> None:
    files = {
        ".python-version": "3.11",
        "runtime.txt": "not even a version",
        "pyproject.toml": "[not toml",
    }
    assert decide(files)[0] == "Using Python 3.11 specified in .python-version"
    del files[".python-version"]
    assert failure(files).message.startswith("Invalid Python version in runtime.txt")
    assert decide({"runtime.txt": "python-3.12", **pyproject(">=3.13")})[1] == PY312.path


def test_nothing_available_is_a_clear_failure() -> None:
    assert failure({}, []).message == (
        "No Python interpreter is available here to build the app with."
    )


def test_available_minors_newest_first_each_once() -> None:
    other311 = Interpreter("/usr/local/bin/python3.11", (3, 11, 9), "3.11.9")
    assert available_minors([PY311, other311, PY313, PY312]) == "3.13, 3.12, 3.11"


versions = st.tuples(st.integers(2, 4), st.integers(0, 14), st.integers(0, 4))
operators = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "~=", "==*", "!=*"])


@st.composite
def specifiers(draw: st.DrawFn) -> str:
    clauses = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(operators)
        length = draw(st.integers(2 if op == "~=" else 1, 3))
        numbers = ".".join(str(n) for n in draw(versions)[:length])
        clauses.append(f"{op[:2]}{numbers}.*" if op.endswith("*") else f"{op}{numbers}")
    return ", ".join(clauses)


@given(specifiers(), versions)
def test_specifiers_mean_what_pep_440_says_for_final_releases(
    spec: str, version: tuple[int, int, int]
) -> None:
    ours = all(clause.allows(version) for clause in parse_specifier(spec))
    theirs = SpecifierSet(spec).contains(".".join(map(str, version)))
    assert ours == theirs, spec


@pytest.mark.parametrize(
    ("requires", "source", "wanted"),
    [
        ({"python_version": "3.12"}, "Pipfile.lock", "3.12"),
        ({"python_full_version": "3.12.1", "python_version": "3.12"}, "Pipfile.lock", "3.12.1"),
    ],
)
def test_pipfile_lock_names_the_version(requires: dict, source: str, wanted: str) -> None:
    lock = json.dumps({"_meta": {"requires": requires}, "default": {}}).encode()
    request = requested_version({"Pipfile.lock": lock, "pyproject.toml": b""})
    assert request is not None
    assert (request.source, request.text) == (source, wanted)


def test_a_pipfile_lock_without_a_version_leaves_it_to_pyproject() -> None:
    lock = json.dumps({"_meta": {"requires": {}}}).encode()
    pyproject = b'[project]\nrequires-python = ">=3.11"\n'
    request = requested_version({"Pipfile.lock": lock, "pyproject.toml": pyproject})
    assert request is not None and request.source == "pyproject.toml"


@pytest.mark.parametrize(
    "lock", [b"{not json", b'{"_meta": {"requires": {"python_version": "3"}}}']
)
def test_a_bad_pipfile_lock_is_refused(lock: bytes) -> None:
    with pytest.raises(BuildFailed, match=r"Pipfile\.lock"):
        requested_version({"Pipfile.lock": lock})
