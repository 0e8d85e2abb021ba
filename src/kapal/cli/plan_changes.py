"""`kapal addons:upgrade ADDON PLAN` and `addons:downgrade`: move an add-on to another plan of
its service (third-party providers' add-ons; Kapal's own services refuse, saying why)."""

from __future__ import annotations

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.output import action, hexagon
from kapal.client.addons import change_addon_plan


def full_plan(service: str, plan: str) -> str:
    """`pro` of acme-search -> `acme-search:pro`; `acme-search:pro` stays."""
    return plan if ":" in plan else f"{service}:{plan}"


def _change(env: CliEnv, app: str | None, addon_name: str, plan: str) -> None:
    app_name = env.resolve_app(app)
    client = env.client()
    addon = client.addon(app_name, addon_name)
    service = addon.get("addon_service", {}).get("name", "")
    old = addon.get("plan", {}).get("name", "?")
    new = full_plan(service, plan)
    with action(f"Changing {addon['name']} on {hexagon(app_name)} from {old} to {new}"):
        changed = change_addon_plan(client, app_name, addon["name"], new)
    if changed.get("provision_message"):
        click.echo(changed["provision_message"])


_addon = click.argument("addon_name", metavar="ADDON")
_plan = click.argument("plan", metavar="[SERVICE:]PLAN")


@click.command("addons:upgrade")
@app_option
@_addon
@_plan
@pass_env
def upgrade(env: CliEnv, app: str | None, addon_name: str, plan: str) -> None:
    """Change an add-on's plan (the provider is asked; new config vars make a release)."""
    _change(env, app, addon_name, plan)


@click.command("addons:downgrade")
@app_option
@_addon
@_plan
@pass_env
def downgrade(env: CliEnv, app: str | None, addon_name: str, plan: str) -> None:
    """Change an add-on's plan to a smaller one (the same as addons:upgrade)."""
    _change(env, app, addon_name, plan)


COMMANDS: list[click.Command] = [upgrade, downgrade]
