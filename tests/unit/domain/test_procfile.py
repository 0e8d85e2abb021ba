from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.procfile import ProcfileError, parse_procfile


def test_parses_types_comments_and_blank_lines() -> None:
    text = "# the app\nweb: gunicorn app:app --bind 127.0.0.1:$PORT\n\nrelease:  ./migrate \n"
    assert parse_procfile(text) == {
        "web": "gunicorn app:app --bind 127.0.0.1:$PORT",
        "release": "./migrate",
    }


def test_a_malformed_line_is_named() -> None:
    with pytest.raises(ProcfileError, match="Procfile line 2"):
        parse_procfile("web: ok\nworker python run.py\n")


def test_a_type_declared_twice_is_an_error() -> None:
    with pytest.raises(ProcfileError, match="line 2: process type 'web' is declared twice"):
        parse_procfile("web: a\nweb: b\n")


def test_an_empty_command_is_an_error() -> None:
    with pytest.raises(ProcfileError):
        parse_procfile("web:   \n")


names = st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True)
commands = st.from_regex(r"[a-z$][ -~]{0,40}[a-z]", fullmatch=True)


@given(st.dictionaries(names, commands, max_size=6))
def test_round_trip(types: dict[str, str]) -> None:
    text = "\n".join(f"{name}: {command}" for name, command in types.items())
    assert parse_procfile(text) == {name: command.strip() for name, command in types.items()}


def test_overlong_process_type_names_are_refused() -> None:
    with pytest.raises(ProcfileError, match="line 1: process type names are at most 63"):
        parse_procfile("w" * 64 + ": run\n")
