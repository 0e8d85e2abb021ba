from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kapal.cli import netrc

OTHER = """# my machines
machine example.com login alice password secret1

machine git.example.org
  login bob
  password "two words"

default login anonymous password guest
"""


def test_finds_entries_on_one_line_or_many() -> None:
    assert netrc.find(OTHER, "example.com") is not None
    entry = netrc.find(OTHER, "git.example.org")
    assert entry is not None
    assert (entry.login, entry.password) == ("bob", "two words")
    assert netrc.find(OTHER, "localhost") is None


def test_comment_words_are_not_entries() -> None:
    text = "# machine localhost login x password y\nmachine a login b password c\n"
    assert netrc.find(text, "localhost") is None
    assert [e.machine for e in netrc.parse(text)] == ["a"]


def test_macdef_body_is_skipped() -> None:
    text = "machine a login b password c\nmacdef init\nmachine localhost\n\nmachine d login e\n"
    assert [e.machine for e in netrc.parse(text)] == ["a", "d"]


def test_adding_keeps_other_entries_verbatim() -> None:
    new = netrc.with_entry(OTHER, "localhost", "me@example.com", "tok")
    assert new.startswith(OTHER)
    entry = netrc.find(new, "localhost")
    assert entry is not None
    assert (entry.login, entry.password) == ("me@example.com", "tok")


def test_replacing_changes_only_that_entry_and_drops_duplicates() -> None:
    text = (
        "machine a login x password 1\n"
        "machine localhost login old password old\n"
        "machine b login y password 2\n"
        "machine localhost login older password older\n"
    )
    new = netrc.with_entry(text, "localhost", "me", "tok")
    entries = [(e.machine, e.login, e.password) for e in netrc.parse(new)]
    assert entries == [("a", "x", "1"), ("localhost", "me", "tok"), ("b", "y", "2")]


def test_removing_keeps_the_rest() -> None:
    text = netrc.with_entry(OTHER, "localhost", "me", "tok")
    assert netrc.without_entry(text, "localhost").rstrip() == OTHER.rstrip()


def test_refuses_values_netrc_cannot_hold() -> None:
    with pytest.raises(ValueError):
        netrc.with_entry("", "localhost", "me", "has space")


def test_file_write_keeps_others_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "netrc"
    path.write_text(OTHER)
    path.chmod(0o644)
    netrc.write_entry(path, "localhost", "me@example.com", "tok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith(OTHER)
    entry = netrc.read_entry(path, "localhost")
    assert entry is not None and entry.password == "tok"

    netrc.write_entry(path, "localhost", "me@example.com", "tok2")
    assert path.read_text().count("machine localhost") == 1
    entry = netrc.read_entry(path, "localhost")
    assert entry is not None and entry.password == "tok2"

    assert netrc.remove_entry(path, "localhost") is True
    assert netrc.read_entry(path, "localhost") is None
    assert netrc.find(path.read_text(), "git.example.org") is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert netrc.remove_entry(path, "localhost") is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["netrc"]  # no temporary files left


def test_new_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / ".netrc"
    assert netrc.read_entry(path, "localhost") is None
    netrc.write_entry(path, "localhost", "me", "tok")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "machine localhost\n  login me\n  password tok\n"


def test_python_netrc_reads_what_we_write(tmp_path: Path) -> None:
    import netrc as stdlib_netrc

    path = tmp_path / "netrc"
    path.write_text(OTHER)
    netrc.write_entry(path, "localhost", "me@example.com", "tok")
    parsed = stdlib_netrc.netrc(str(path))
    assert parsed.authenticators("localhost") == ("me@example.com", "", "tok")
    assert parsed.authenticators("example.com") == ("alice", "", "secret1")
