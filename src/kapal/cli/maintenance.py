"""`kapal maintenance`, `maintenance:on`, `maintenance:off`: the router answers every request
with the maintenance page (H80) while the dynos keep running."""

from __future__ import annotations

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.output import action, hexagon


@click.command("maintenance")
@app_option
@pass_env
def show(env: CliEnv, app: str | None) -> None:
    """Say whether the app is in maintenance mode (on or off)."""
    name = env.resolve_app(app)
    click.echo("on" if env.client().get_app(name).get("maintenance") else "off")


@click.command("maintenance:on")
@app_option
@pass_env
def turn_on(env: CliEnv, app: str | None) -> None:
    """Put the app in maintenance mode: requests get the maintenance page (503, H80)."""
    name = env.resolve_app(app)
    with action(f"Turning on maintenance mode for {hexagon(name)}"):
        env.client().update_app(name, maintenance=True)


@click.command("maintenance:off")
@app_option
@pass_env
def turn_off(env: CliEnv, app: str | None) -> None:
    """Take the app out of maintenance mode: requests reach its web dynos again."""
    name = env.resolve_app(app)
    with action(f"Turning off maintenance mode for {hexagon(name)}"):
        env.client().update_app(name, maintenance=False)


COMMANDS = [show, turn_on, turn_off]
