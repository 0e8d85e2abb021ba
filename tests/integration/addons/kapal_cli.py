"""Kapal's CLI run in-process against a real API, logged in with a token (add-on CLI tests)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from click.testing import CliRunner, Result

from kapal.cli.context import CliEnv
from kapal.cli.main import build_cli

Run = Callable[..., Result]


def kapal_cli(api_url: str, token: str, home: Path) -> Run:
    """`run(*args, input=None, path=None)`: `kapal ARGS` with HOME at `home` (made here), `input`
    on its stdin and, given `path`, that PATH instead of this process's."""
    home.mkdir()

    def run(*args: str, input: str | None = None, path: str | None = None) -> Result:
        env = CliEnv(
            environ={
                "PATH": path if path is not None else os.environ["PATH"],
                "HOME": str(home),
                "KAPAL_API_URL": api_url,
                "KAPAL_API_KEY": token,
            },
            cwd=home,
            tz=UTC,
            home=home,
        )
        return CliRunner().invoke(build_cli(), list(args), input=input, obj=env)

    return run
