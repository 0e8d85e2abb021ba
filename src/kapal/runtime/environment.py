"""A dyno's environment and command line, built from its release alone (pure).

Nothing of the agent's own environment is passed on: a dyno sees its config vars and the
variables Heroku documents (PORT, DYNO, HOME), never KAPAL_* settings or secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# Heroku runs `bash --login -c <command>`: profile scripts must be bash, and bash runs the
# last simple command of `-c` in place (exec), so the command, not a shell, gets the signals.
SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"

# Sourced in the dyno's shell before the command, like Heroku's /etc/profile does; they run
# after config vars are set, so scripts use `${VAR:-default}` to let config win.
PROFILE = (
    'for f in "$HOME"/.profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; unset f\n'
    '[ -r "$HOME/.profile" ] && . "$HOME/.profile"\n'
)


def dyno_env(
    config: Mapping[str, str],
    *,
    dyno: str,
    home: Path,
    port: int | None = None,
    ram_mb: int | None = None,
) -> dict[str, str]:
    """Defaults a config var may override (PATH, LANG...), then the config vars, then what the
    platform owns (HOME, DYNO, PORT, DYNO_RAM: the size's memory in MB)."""
    env = {
        "PATH": f"{home}/.venv/bin:{SYSTEM_PATH}",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(config)
    env["HOME"] = str(home)
    env["DYNO"] = dyno
    if ram_mb is not None:
        env["DYNO_RAM"] = str(ram_mb)
    if port is not None:
        env["PORT"] = str(port)
    else:
        env.pop("PORT", None)
    return env


def dyno_argv(command: str) -> list[str]:
    """The user's command, as shell text, after the profile scripts.

    Not `exec <command>`: that breaks `cd sub && gunicorn ...`, `VAR=x cmd` and the
    `cmd; echo "<exit status marker>"` one-off clients append."""
    return [SHELL, "-c", PROFILE + command]
