"""`kapal addons:services` and `kapal addons:plans SERVICE`: what add-ons Kapal offers."""

from __future__ import annotations

import click

from kapal.cli.context import CliEnv, pass_env
from kapal.cli.output import columns
from kapal.client.addons import addon_plans, addon_services


@click.command("addons:services")
@pass_env
def services(env: CliEnv) -> None:
    """List the add-on services you can create (kapal addons:create SERVICE[:PLAN])."""
    found = addon_services(env.client())
    rows = [["Slug", "Name", "State"]]
    rows += [[s["name"], s["human_name"], s["state"]] for s in found]
    table = columns(rows)
    for line in [table[0], "─" * len(table[0]), *table[1:]]:
        click.echo(line)
    click.echo("\nSee plans with kapal addons:plans SERVICE")


@click.command("addons:plans")
@click.argument("service")
@pass_env
def plans(env: CliEnv, service: str) -> None:
    """List a service's plans and what each allows."""
    found = addon_plans(env.client(), service)
    rows = [["", "Slug", "Name", "Price", "Limits"]]
    rows += [
        ["default" if p["default"] else "", p["name"], p["human_name"], "free", p["description"]]
        for p in found
    ]
    table = columns(rows)
    for line in [table[0], "─" * len(table[0]), *table[1:]]:
        click.echo(line.rstrip())


COMMANDS: list[click.Command] = [services, plans]
