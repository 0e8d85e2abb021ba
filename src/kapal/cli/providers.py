"""`kapal addons:providers[:add|:update|:remove]`: third-party add-on services reached
through Heroku's Add-on Partner API, which operators register."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import click

from kapal.cli.confirm import confirm_app
from kapal.cli.context import CliEnv, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, columns
from kapal.client import providers as api
from kapal.client.providers import Provider

F = TypeVar("F", bound=Callable[..., object])


def parse_plan_option(text: str) -> dict[str, str]:
    """`--plan test:For trying it` -> {"name": "test", "description": "For trying it"}."""
    name, _, description = text.partition(":")
    if not name.strip():
        raise CliError(f"--plan {text!r}: give NAME or NAME:DESCRIPTION.")
    return {"name": name.strip(), "description": description.strip()}


def providers_table(found: Sequence[Provider]) -> list[str]:
    if not found:
        return ["No add-on providers are registered. Add one with kapal addons:providers:add."]
    rows = [["ID", "Name", "Plans", "Config vars", "Base URL"]]
    rows += [
        [
            p["id"],
            p["name"],
            ", ".join(plan["name"] for plan in p["plans"]),
            ", ".join(p["config_vars"]) or "-",
            p["base_url"],
        ]
        for p in found
    ]
    table = [line.rstrip() for line in columns(rows)]
    return [table[0], "─" * max(len(line) for line in table), *table[1:]]


def read_password(
    env: CliEnv, password: str | None, from_stdin: bool, *, required: bool
) -> str | None:
    """--password, else one line of stdin (--password-stdin), else a hidden prompt."""
    if password is not None and from_stdin:
        raise CliError("Give --password or --password-stdin, not both.")
    if password is not None:
        return password
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CliError("--password-stdin: no password on the first line of stdin.")
        return line
    if not required:
        return None
    if not env.stdin_tty:
        raise CliError("The provider's password is needed: pipe it in with --password-stdin.")
    return str(click.prompt("Provider's API password", hide_input=True, err=True))


def _manifest_options(f: F) -> F:
    """What add and update share."""
    options = [
        click.option("--base-url", metavar="URL", help="Where Kapal POSTs provision requests."),
        click.option(
            "--password-stdin",
            is_flag=True,
            help="Read the provider's API password from the first line of stdin.",
        ),
        click.option(
            "--password",
            metavar="PASSWORD",
            help="The provider's API password. Other users of this machine can see it in the "
            "process list: prefer --password-stdin, or the prompt on a terminal.",
        ),
        click.option(
            "--plan",
            "plans",
            multiple=True,
            metavar="NAME[:DESCRIPTION]",
            help="A plan users may choose (repeat for each; the first is the default).",
        ),
        click.option(
            "--config-var",
            "config_vars",
            multiple=True,
            metavar="NAME",
            help="A config var the provider sets, like ACME_URL (repeat for each).",
        ),
        click.option("--name", metavar="NAME", help="The service's human name (Acme Search)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command("addons:providers")
@pass_env
def list_providers(env: CliEnv) -> None:
    """List the registered add-on providers (operators only)."""
    for line in providers_table(api.providers(env.client())):
        click.echo(line)


@click.command("addons:providers:add")
@click.argument("ident", metavar="ID")
@_manifest_options
@pass_env
def add(
    env: CliEnv,
    ident: str,
    base_url: str | None,
    password_stdin: bool,
    password: str | None,
    plans: tuple[str, ...],
    config_vars: tuple[str, ...],
    name: str | None,
) -> None:
    """Register a provider that speaks Heroku's Add-on Partner API; ID becomes the add-on
    service's name (kapal addons:create ID:PLAN). Operators only."""
    if not base_url:
        raise CliError(
            "Give the provider's --base-url (e.g. https://acme.example/heroku/resources)."
        )
    if not plans:
        raise CliError("Give at least one --plan NAME[:DESCRIPTION].")
    manifest: dict[str, object] = {
        "id": ident,
        "base_url": base_url,
        "password": read_password(env, password, password_stdin, required=True),
        "plans": [parse_plan_option(p) for p in plans],
        "config_vars": list(config_vars),
    }
    if name:
        manifest["name"] = name
    client = env.client()
    with action(f"Registering add-on provider {ident}"):
        provider = api.add_provider(client, manifest)
    default = provider["plans"][0]["name"]
    click.echo(f"Users can now run kapal addons:create {provider['id']}:{default}")


@click.command("addons:providers:update")
@click.argument("ident", metavar="ID")
@_manifest_options
@pass_env
def update(
    env: CliEnv,
    ident: str,
    base_url: str | None,
    password_stdin: bool,
    password: str | None,
    plans: tuple[str, ...],
    config_vars: tuple[str, ...],
    name: str | None,
) -> None:
    """Change a provider: what is given replaces what it had (all its --plan, all its
    --config-var). Operators only."""
    changes: dict[str, object] = {}
    secret = read_password(env, password, password_stdin, required=False)
    for key, value in (
        ("base_url", base_url),
        ("password", secret),
        ("name", name),
        ("plans", [parse_plan_option(p) for p in plans] or None),
        ("config_vars", list(config_vars) or None),
    ):
        if value is not None:
            changes[key] = value
    if not changes:
        raise CliError(
            "Nothing to change: give --base-url, a password, --plan, --config-var or --name."
        )
    client = env.client()
    with action(f"Updating add-on provider {ident}"):
        api.update_provider(client, ident, changes)


@click.command("addons:providers:remove")
@click.argument("ident", metavar="ID")
@click.option("--confirm", metavar="ID", help="The provider's id, to remove it without a prompt.")
@pass_env
def remove(env: CliEnv, ident: str, confirm: str | None) -> None:
    """Forget a provider; its add-ons must have been destroyed first. Operators only."""
    would = f"remove the add-on provider {ident}: nobody can create its add-ons any more"
    confirm_app(env, ident, confirm, would=would, aborted="Aborted.")
    client = env.client()
    with action(f"Removing add-on provider {ident}"):
        api.remove_provider(client, ident)


COMMANDS: list[click.Command] = [list_providers, add, update, remove]
