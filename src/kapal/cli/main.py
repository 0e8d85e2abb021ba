"""Assemble the `kapal` command group from the topic modules."""

from __future__ import annotations

from types import ModuleType

import click

from kapal.cli import (
    addons,
    apps,
    attachments,
    auth,
    buildpacks,
    builds,
    certs,
    config,
    domains,
    drains,
    heroku_env,
    logs,
    maintenance,
    marketplace,
    mysql,
    pg,
    pgbackups,
    plan_changes,
    providers,
    ps,
    redis,
    releases,
    run,
)
from kapal.cli.group import KapalGroup

# Each topic module exposes COMMANDS (a list of click commands) and optionally ALIASES.
TOPICS: tuple[ModuleType, ...] = (
    auth,
    apps,
    ps,
    config,
    releases,
    logs,
    drains,
    run,
    addons,
    attachments,
    pg,
    pgbackups,
    marketplace,
    providers,
    plan_changes,
    mysql,
    redis,
    buildpacks,
    builds,
    maintenance,
    domains,
    certs,
    heroku_env,
)

HELP = """Kapal: a self-hosted Heroku.

\b
Getting started:
  kapal signup                 create an account (or: kapal login)
  kapal create                 create an app and its git remote `kapal`
  git push kapal main          build and deploy
  kapal open / logs --tail / ps:scale web=2 / config:set K=V / run bash

Commands that act on an app take -a APP; without it the app comes from the git remote
`kapal` (or `heroku`) of the repository you are in. KAPAL_API_URL selects the Kapal
(default http://localhost:5000); KAPAL_API_KEY overrides the token saved by kapal login.
The official Heroku CLI works too: eval "$(kapal heroku-env)", then heroku login -i.
"""


def register(group: KapalGroup, module: ModuleType) -> None:
    for command in module.COMMANDS:
        group.add_command(command)
    for alias, target in getattr(module, "ALIASES", {}).items():
        group.add_alias(alias, target)


def build_cli() -> KapalGroup:
    """A fresh `kapal` group with every topic's commands."""
    group = KapalGroup("kapal", help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
    click.version_option(package_name="kapal", prog_name="kapal")(group)
    for module in TOPICS:
        register(group, module)
    return group
