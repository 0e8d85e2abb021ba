"""`kapal addons:attach` and `addons:detach`: one add-on's URL in several apps' config."""

from __future__ import annotations

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.output import action, hexagon
from kapal.client.addons import attach_addon, detach_addon


@click.command("addons:attach")
@app_option
@click.argument("addon_name")
@click.option("--as", "as_", metavar="NAME", help="The attachment's name (NAME_URL is set).")
@pass_env
def attach(env: CliEnv, app: str | None, addon_name: str, as_: str | None) -> None:
    """Give the app ADDON_NAME's URL too (an add-on of another of your apps, say)."""
    name = env.resolve_app(app)
    with action(f"Attaching {addon_name} to {hexagon(name)}"):
        attachment = attach_addon(env.client(), addon_name, name, as_)
    click.echo(f"{attachment['name']}_URL is set; the app's dynos restart with it.")


@click.command("addons:detach")
@app_option
@click.argument("attachment_name")
@pass_env
def detach(env: CliEnv, app: str | None, attachment_name: str) -> None:
    """Take an attachment (such as REPORTS or REPORTS_URL) away from the app."""
    name = env.resolve_app(app)
    with action(f"Detaching {attachment_name} from {hexagon(name)}"):
        attachment = detach_addon(env.client(), name, attachment_name)
    click.echo(f"{attachment['name']}_URL is unset; the app's dynos restart without it.")


COMMANDS: list[click.Command] = [attach, detach]
