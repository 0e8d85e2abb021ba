from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kapal.cli.main import build_cli

COMMANDS = sorted(build_cli().commands)


def test_help_lists_commands_and_aliases() -> None:
    result = CliRunner().invoke(build_cli(), ["--help"])
    assert result.exit_code == 0
    for name in ("apps:create", "ps:scale", "config:set", "releases:rollback", "run:detached"):
        assert f"  {name} " in result.output
    assert "Aliases:" in result.output
    assert "rollback       Same as releases:rollback." in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(build_cli(), [name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: kapal {name} ")
    command = build_cli().commands[name]
    assert command.help, f"{name} has no help text"


def test_alias_runs_its_target() -> None:
    result = CliRunner().invoke(build_cli(), ["rollback", "--help"])
    assert result.exit_code == 0
    assert "Roll back to an earlier release" in result.output


def test_unknown_command() -> None:
    result = CliRunner().invoke(build_cli(), ["nope"])
    assert result.exit_code == 2


def test_console_script_wires_the_real_process(tmp_path: Path) -> None:
    """The installed `kapal` script: real environment, real netrc lookup, real exit status."""
    kapal = Path(sys.executable).parent / "kapal"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KAPAL_API_URL": "http://localhost:1"}
    result = subprocess.run(
        [str(kapal), "whoami"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stderr == " ▸    Not logged in. Run kapal login (or kapal signup).\n"
    version = subprocess.run(
        [str(kapal), "--version"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("kapal, version ")
