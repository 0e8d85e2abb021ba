"""Confirming a destructive command by typing the app's name (or passing --confirm NAME)."""

from __future__ import annotations

import click

from kapal.cli.context import CliEnv
from kapal.cli.errors import CliError
from kapal.cli.output import WARNING


def confirm_app(env: CliEnv, app: str, confirm: str | None, *, would: str, aborted: str) -> None:
    """Go on only if `confirm`, or what the user types at a prompt, is the app's name.
    `would`: what the command would do (`destroy ⬢ app and all its add-ons`)."""
    if confirm is None:
        if not env.stdin_tty:
            raise CliError(f"This would {would}.\nRe-run with --confirm {app} to proceed.")
        click.echo(f"{WARNING}WARNING: This will {would}.", err=True)
        confirm = str(click.prompt(f"{WARNING}To proceed, type {app}", err=True))
    if confirm.strip() != app:
        raise CliError(f"Confirmation {confirm.strip()!r} did not match {app}. {aborted}")
