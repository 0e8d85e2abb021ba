"""`kapal config`, `config:get`, `config:set`, `config:unset`: an app's config vars."""

from __future__ import annotations

import json
import shlex

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, echo_header, hexagon, key_values_of
from kapal.client import KapalClient
from kapal.domain.names import CONFIG_KEY


def parse_assignments(args: tuple[str, ...]) -> dict[str, str]:
    """`KEY=value` arguments (split at the first `=`, so values may contain `=`)."""
    if not args:
        raise CliError("Usage: kapal config:set KEY1=VALUE1 [KEY2=VALUE2 ...]")
    result: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise CliError(f"{arg} is invalid. Must be in the format KEY=value.")
        check_key(key)
        result[key] = value
    return result


def check_key(key: str) -> str:
    if not CONFIG_KEY.fullmatch(key):
        raise CliError(
            f"{key!r} is not a valid config var name: use letters, digits and underscores, "
            "not starting with a digit."
        )
    return key


def shell_lines(config: dict[str, str]) -> list[str]:
    """`KEY=value`, quoted for a POSIX shell where needed."""
    return [f"{key}={shlex.quote(value)}" for key, value in sorted(config.items())]


def latest_version(client: KapalClient, app: str) -> str:
    """`, v12` for the newest release (what a config change just created), or ``."""
    releases = client.releases(app, max=1)
    return f", v{releases[0]['version']}" if releases else ""


@click.command("config")
@app_option
@click.option("-s", "--shell", is_flag=True, help="Print KEY=value lines for a shell or .env.")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_env
def show(env: CliEnv, app: str | None, shell: bool, as_json: bool) -> None:
    """Show the app's config vars."""
    name = env.resolve_app(app)
    config = env.client().config_vars(name)
    if as_json:
        click.echo(json.dumps(config, indent=2, sort_keys=True))
    elif shell:
        for line in shell_lines(config):
            click.echo(line)
    else:
        echo_header(f"{name} Config Vars")
        for line in key_values_of(config):
            click.echo(line)


@click.command("config:get")
@app_option
@click.argument("key")
@click.option("-s", "--shell", is_flag=True, help="Print KEY=value.")
@pass_env
def get(env: CliEnv, app: str | None, key: str, shell: bool) -> None:
    """Print one config var's value."""
    name = env.resolve_app(app)
    value = env.client().config_vars(name).get(key, "")
    click.echo(f"{key}={shlex.quote(value)}" if shell else value)


@click.command("config:set")
@app_option
@click.argument("assignments", nargs=-1, metavar="KEY=VALUE...")
@pass_env
def set_(env: CliEnv, app: str | None, assignments: tuple[str, ...]) -> None:
    """Set config vars; this makes a new release and restarts the dynos."""
    changes = parse_assignments(assignments)
    name = env.resolve_app(app)
    client = env.client()
    with action(f"Setting {', '.join(changes)} and restarting {hexagon(name)}") as status:
        config = client.update_config_vars(name, changes)
        status.done(f"done{latest_version(client, name)}")
    for line in key_values_of({key: config.get(key, changes[key]) for key in changes}):
        click.echo(line)


@click.command("config:unset")
@app_option
@click.argument("keys", nargs=-1, required=True, metavar="KEY...")
@pass_env
def unset(env: CliEnv, app: str | None, keys: tuple[str, ...]) -> None:
    """Remove config vars; this makes a new release and restarts the dynos."""
    for key in keys:
        check_key(key)
    name = env.resolve_app(app)
    client = env.client()
    with action(f"Unsetting {', '.join(keys)} and restarting {hexagon(name)}") as status:
        client.update_config_vars(name, dict.fromkeys(keys))
        status.done(f"done{latest_version(client, name)}")


COMMANDS: list[click.Command] = [show, get, set_, unset]
ALIASES = {"config:add": "config:set", "config:remove": "config:unset"}
