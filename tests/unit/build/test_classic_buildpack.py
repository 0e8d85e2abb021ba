"""What the platform reads from and writes for a classic buildpack."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kapal.build.classic import default_process_types, write_env_dir
from kapal.build.process import BuildFailed, last_words

RELEASE = """---
addons: []
default_process_types:
  web: bin/serve --port $PORT
  worker: bin/work
"""


def test_default_process_types_are_read_from_bin_releases_yaml() -> None:
    assert default_process_types(RELEASE, "bp") == {
        "web": "bin/serve --port $PORT",
        "worker": "bin/work",
    }


@pytest.mark.parametrize("text", ["", "   \n", "---\naddons: []\n", "--- {}\n", "[]\n"])
def test_no_default_process_types_is_none(text: str) -> None:
    assert default_process_types(text, "bp") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default_process_types: [web]\n", "must map process type names"),
        ("default_process_types:\n  web: 3\n", "must map process type names"),
        ("default_process_types:\n  'bad name': x\n", "must map process type names"),
        ('default_process_types:\n  web: "a\\nb"\n', "must map process type names"),
        ("default_process_types: {web: [\n", "did not print YAML"),
    ],
)
def test_bad_release_output_fails_the_build(text: str, message: str) -> None:
    with pytest.raises(BuildFailed, match=message) as failed:
        default_process_types(text, "https://example.com/bp.git")
    assert "https://example.com/bp.git" in failed.value.message


def test_env_dir_holds_one_private_file_per_config_var(tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    write_env_dir(env_dir, {"SECRET_KEY": "s3cr=t\nline2", "EMPTY": ""}, None)
    assert sorted(p.name for p in env_dir.iterdir()) == ["EMPTY", "SECRET_KEY"]
    assert (env_dir / "SECRET_KEY").read_text() == "s3cr=t\nline2"
    assert (env_dir / "EMPTY").read_text() == ""
    assert stat.S_IMODE(env_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((env_dir / "SECRET_KEY").stat().st_mode) == 0o600


def test_the_reason_a_fetch_failed_is_the_commands_own_line() -> None:
    stderr = "Cloning into '/x'...\nfatal: repository 'https://example.com/nope.git/' not found\n"
    assert last_words(stderr) == "fatal: repository 'https://example.com/nope.git/' not found"
    assert last_words("warning: odd\nsomething else\n") == "something else"
    assert last_words("") == "(no output)"
