"""A dyno's environment and argv."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kapal.runtime.environment import dyno_argv, dyno_env


def test_web_dyno_environment(tmp_path: Path) -> None:
    env = dyno_env(
        {"SECRET_KEY": "s3", "LANG": "en_US.UTF-8"}, dyno="web.1", home=tmp_path, port=5123
    )
    assert env == {
        "SECRET_KEY": "s3",
        "PORT": "5123",
        "DYNO": "web.1",
        "HOME": str(tmp_path),
        "PATH": f"{tmp_path}/.venv/bin:/usr/local/bin:/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "LANG": "en_US.UTF-8",  # a config var may override the defaults
    }


def test_platform_variables_win_over_config_vars(tmp_path: Path) -> None:
    config = {"PORT": "1", "DYNO": "x", "HOME": "/", "PATH": "/opt/bin"}
    env = dyno_env(config, dyno="worker.2", home=tmp_path)
    assert "PORT" not in env  # only web dynos get a port
    assert env["DYNO"] == "worker.2"
    assert env["HOME"] == str(tmp_path)
    assert env["PATH"] == "/opt/bin"


def test_nothing_of_the_agents_environment(tmp_path: Path) -> None:
    env = dyno_env({}, dyno="web.1", home=tmp_path, port=1)
    assert not any(key.startswith("KAPAL_") for key in env)
    assert set(env) == {"PATH", "LANG", "PYTHONUNBUFFERED", "HOME", "DYNO", "PORT"}


def run(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dyno_env({"GREETING": "hello"}, dyno="run.1", home=home)
    return subprocess.run(
        dyno_argv(command), env=env, cwd=home, capture_output=True, text=True, timeout=10
    )


def test_profile_scripts_are_sourced_before_the_command(tmp_path: Path) -> None:
    (tmp_path / ".profile.d").mkdir()
    (tmp_path / ".profile.d" / "a.sh").write_text('export FROM_PROFILE="${GREETING:-none} world"\n')
    (tmp_path / ".profile.d" / "b.sh").write_text("SHELL_VAR=plain\n")
    result = run('echo "$FROM_PROFILE $SHELL_VAR"; pwd', tmp_path)
    assert result.stdout.splitlines() == ["hello world plain", str(tmp_path)]


def test_without_profile_scripts(tmp_path: Path) -> None:
    assert run("echo ok", tmp_path).stdout == "ok\n"


def test_compound_commands_and_exit_status_marker(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    result = run(
        'cd sub && X=1 sh -c "pwd; exit 3"; echo "\uffff kapal-command-exit-status: $?"', tmp_path
    )
    assert result.stdout.splitlines() == [
        str(tmp_path / "sub"),
        "\uffff kapal-command-exit-status: 3",
    ]


def test_simple_command_replaces_the_shell(tmp_path: Path) -> None:
    # The command itself is the dyno's main process: signals reach it, its status is the dyno's.
    env = dyno_env({}, dyno="web.1", home=tmp_path)
    argv = dyno_argv("python3 -c 'import os; print(os.getpid())'")
    with subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True) as proc:
        out, _ = proc.communicate(timeout=10)
    assert int(out) == proc.pid
