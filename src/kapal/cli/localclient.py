"""What `pg:psql`, `mysql:cli` and `redis:cli` share: the database's URL from the app's
config, the local client program on PATH, and running it in the foreground with its exit
status as kapal's."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence

import click

from kapal.cli.context import CliEnv
from kapal.cli.errors import CliError
from kapal.cli.output import hexagon
from kapal.client import KapalClient


def config_url(client: KapalClient, app_name: str, var: str) -> str:
    """The value of config var `var` (a database URL)."""
    url = client.config_vars(app_name).get(var)
    if not url:
        raise CliError(f"No config var {var} on {hexagon(app_name)}.")
    return url


def find_program(env: CliEnv, name: str, missing: str) -> str:
    """The client program `name` on the user's PATH; `missing` says how to install it."""
    found = shutil.which(name, path=env.environ.get("PATH"))
    if found is None:
        raise CliError(missing)
    return found


def run_attached(addon_name: str, argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """Run the client on this terminal and exit with its status."""
    click.echo(f"--> Connecting to {addon_name}", err=True)
    # No timeout: an interactive session lasts as long as the user wants it to.
    status = subprocess.run(list(argv), env=dict(environ), check=False).returncode
    click.get_current_context().exit(status)
