"""The `kapal` console script: wire the real process (environment, terminals, browser, network)
into the CLI."""

from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path

import click

from kapal.cli.context import CliEnv
from kapal.cli.main import build_cli
from kapal.entrypoints.up import up


def build() -> click.Group:
    cli = build_cli()
    # `kapal up` runs the server side; only an entry point may import it.
    cli.add_command(up)
    return cli


def main() -> None:
    env = CliEnv(
        environ=dict(os.environ),
        cwd=Path.cwd(),
        stdin_tty=sys.stdin.isatty(),
        stdout_tty=sys.stdout.isatty(),
        open_browser=webbrowser.open,
    )
    build().main(prog_name="kapal", obj=env)


if __name__ == "__main__":
    main()
