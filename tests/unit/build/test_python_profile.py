"""The runtime defaults script, sourced by a real POSIX shell the way a dyno sources it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kapal.build.python import profile

SHELLS = [shell for shell in ("/bin/sh", "/bin/dash", "/bin/bash") if os.path.exists(shell)]
CORES = len(os.sched_getaffinity(0))


def sourced(tmp_path: Path, env: dict[str, str], shell: str = "/bin/sh") -> dict[str, str]:
    """The environment after `. python.sh`, starting from `env`."""
    script = tmp_path / "python.sh"
    script.write_text(profile.SCRIPT)
    result = subprocess.run(
        [shell, "-c", '. "$0" && env', str(script)],
        env={"PATH": "/usr/bin:/bin", "HOME": "/app", **env},
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert result.stderr == ""
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def workers(ram_mb: int) -> str:
    return str(max(1, min(2 * CORES + 1, ram_mb // 256)))


@pytest.mark.parametrize("shell", SHELLS)
def test_defaults_fill_what_is_unset(tmp_path: Path, shell: str) -> None:
    env = sourced(tmp_path, {}, shell)
    assert env["PATH"] == "/app/.venv/bin:/usr/bin:/bin"
    assert env["PYTHONUNBUFFERED"] == "true"
    assert env["LANG"] == "C.UTF-8"
    assert env["FORWARDED_ALLOW_IPS"] == "*"
    assert env["GUNICORN_CMD_ARGS"] == "--access-logfile -"
    assert env["WEB_CONCURRENCY"] == workers(512)
    assert not [key for key in env if key.startswith("kapal_")]  # its own variables unset


def test_config_vars_win(tmp_path: Path) -> None:
    preset = {
        "PYTHONUNBUFFERED": "1",
        "LANG": "en_US.UTF-8",
        "FORWARDED_ALLOW_IPS": "10.0.0.1",
        "GUNICORN_CMD_ARGS": "--timeout 60",
        "WEB_CONCURRENCY": "7",
    }
    env = sourced(tmp_path, preset)
    assert {key: env[key] for key in preset} == preset


def test_an_empty_value_counts_as_unset(tmp_path: Path) -> None:
    env = sourced(tmp_path, {"WEB_CONCURRENCY": "", "GUNICORN_CMD_ARGS": ""})
    assert env["WEB_CONCURRENCY"] == workers(512)
    assert env["GUNICORN_CMD_ARGS"] == "--access-logfile -"


@pytest.mark.parametrize(
    ("dyno_ram", "ram_mb"),
    [
        ("256", 256),
        ("1024", 1024),
        ("14336", 14336),
        ("100", 100),  # less than one worker's share: still one
        ("0768", 768),  # not octal
        ("0", 0),
        ("lots", 512),  # not a number: the default
        ("-512", 512),
        ("99999999999999999999999", 10**8),  # no overflow
    ],
)
def test_web_concurrency_follows_dyno_ram_and_cores(
    tmp_path: Path, dyno_ram: str, ram_mb: int
) -> None:
    assert sourced(tmp_path, {"DYNO_RAM": dyno_ram})["WEB_CONCURRENCY"] == workers(ram_mb)
