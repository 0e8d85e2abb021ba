"""`kapal drains`, `drains:add URL`, `drains:remove URL`: where the app's log lines also go."""

from __future__ import annotations

import json

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.output import action, hexagon
from kapal.client import drains as api


@click.command("drains")
@app_option
@click.option("--json", "as_json", is_flag=True, help="Print the drains as JSON.")
@pass_env
def show(env: CliEnv, app: str | None, as_json: bool) -> None:
    """List the app's log drains and their tokens."""
    name = env.resolve_app(app)
    drains = api.drains(env.client(), name)
    if as_json:
        click.echo(json.dumps(drains, indent=2))
        return
    if not drains:
        click.echo(f"{hexagon(name)} has no drains.")
        return
    click.echo("=== Drains")
    for drain in drains:
        click.echo(f"{drain['url']} ({drain['token']})")


@click.command("drains:add")
@app_option
@click.argument("url")
@pass_env
def add(env: CliEnv, app: str | None, url: str) -> None:
    """Send the app's log lines to URL too: syslog://HOST:PORT, syslog+tls://HOST:PORT or
    https://HOST/PATH."""
    name = env.resolve_app(app)
    with action(f"Adding a drain to {hexagon(name)}"):
        drain = api.add_drain(env.client(), name, url)
    click.echo(f"Successfully added drain {drain['url']}")
    click.echo(f"Its lines name the app by the token {drain['token']}.")


@click.command("drains:remove")
@app_option
@click.argument("url_or_token")
@pass_env
def remove(env: CliEnv, app: str | None, url_or_token: str) -> None:
    """Stop sending the app's log lines to a drain (its URL or token)."""
    name = env.resolve_app(app)
    with action(f"Removing a drain from {hexagon(name)}"):
        drain = api.remove_drain(env.client(), name, url_or_token)
    click.echo(f"Successfully removed drain {drain['url']}")


COMMANDS: list[click.Command] = [show, add, remove]
