"""`kapal redis:cli`, `redis:info` and `redis:maxmemory`, for kapal-redis add-ons."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from urllib.parse import unquote, urlsplit

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.localclient import find_program, run_attached
from kapal.cli.output import echo_header, hexagon, key_values
from kapal.client.redis import redis_database, set_maxmemory_policy
from kapal.client.types import Addon

SERVICES = ("kapal-redis", "heroku-redis")
PRIMARY = "REDIS_URL"
NO_REDIS_CLI = (
    "The local redis-cli command could not be located. Install Redis's client "
    "(for example `apt-get install redis-tools`)."
)


def redis_addons(addons: Sequence[Addon]) -> list[Addon]:
    return [a for a in addons if a.get("addon_service", {}).get("name") in SERVICES]


def _names(addon: Addon) -> set[str]:
    """What a user may call an add-on: its name, REDIS_URL, or REDIS."""
    config_vars = addon.get("config_vars", [])
    return {addon["name"], *config_vars, *(v.removesuffix("_URL") for v in config_vars)}


def select_redis(app: str, addons: Sequence[Addon], wanted: str | None) -> list[Addon]:
    """The app's Redis add-ons, or the one called `wanted`."""
    found = redis_addons(addons)
    if not found:
        raise CliError(f"{hexagon(app)} has no Redis add-ons.")
    if wanted is None:
        return found
    chosen = [a for a in found if wanted in _names(a)]
    if not chosen:
        valid = ", ".join(a["name"] for a in found)
        raise CliError(f"Unknown Redis add-on: {wanted}. Valid options are: {valid}")
    return chosen


def pick_redis(app: str, addons: Sequence[Addon], wanted: str | None) -> Addon:
    """One Redis add-on: `wanted`, the only one, or the one that sets REDIS_URL."""
    found = select_redis(app, addons, wanted)
    if len(found) > 1:
        primary = [a for a in found if PRIMARY in a.get("config_vars", [])]
        if len(primary) != 1:
            names = ", ".join(a["name"] for a in found)
            raise CliError(f"Please specify a single instance. Found: {names}")
        return primary[0]
    return found[0]


def redis_cli_invocation(
    program: str, url: str, base: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """redis-cli's arguments for a redis:// URL, and its environment: the password goes in
    REDISCLI_AUTH, never on the command line."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise CliError("The Redis URL in the app's config vars is not a redis:// URL.")
    argv = [program, "-h", parts.hostname, "-p", str(parts.port or 6379)]
    if parts.username:
        argv += ["--user", unquote(parts.username)]
    if parts.scheme == "rediss":
        argv.append("--tls")
    database = parts.path.strip("/")
    if database:
        argv += ["-n", database]
    env = dict(base)
    env.pop("REDISCLI_AUTH", None)
    if parts.password:
        env["REDISCLI_AUTH"] = unquote(parts.password)
    return argv, env


@click.command("redis:cli")
@app_option
@click.argument("database", required=False)
@click.option("-c", "--command", "command", metavar="COMMAND", help="Run one command and exit.")
@pass_env
def cli(env: CliEnv, app: str | None, database: str | None, command: str | None) -> None:
    """Open redis-cli on the app's Redis (REDIS_URL by default), or run one command with -c."""
    app_name = env.resolve_app(app)
    client = env.client()
    addon = pick_redis(app_name, client.addons(app_name), database)
    config_vars = addon.get("config_vars", [])
    url = client.config_vars(app_name).get(config_vars[0]) if config_vars else None
    if not url:
        raise CliError(f"{addon['name']} sets no config var on {hexagon(app_name)}.")
    found = find_program(env, "redis-cli", NO_REDIS_CLI)
    argv, environ = redis_cli_invocation(found, url, env.environ)
    if command is not None:
        argv += shlex.split(command)
    run_attached(addon["name"], argv, environ)


@click.command("redis:info")
@app_option
@click.argument("database", required=False)
@pass_env
def info(env: CliEnv, app: str | None, database: str | None) -> None:
    """Show the plan, status, memory, clients and keys of the app's Redis add-ons."""
    app_name = env.resolve_app(app)
    client = env.client()
    for n, addon in enumerate(select_redis(app_name, client.addons(app_name), database)):
        db = redis_database(client, addon["name"])
        if n:
            click.echo()
        config_vars = ", ".join(addon.get("config_vars", []))
        echo_header(f"{addon['name']} ({config_vars})" if config_vars else addon["name"])
        rows = [(row["name"], ", ".join(row["values"])) for row in db["info"]]
        for line in key_values(rows):
            click.echo(line)


@click.command("redis:maxmemory")
@app_option
@click.argument("database", required=False)
@click.option("-p", "--policy", required=True, metavar="POLICY", help="The eviction policy.")
@pass_env
def maxmemory(env: CliEnv, app: str | None, database: str | None, policy: str) -> None:
    """Set the key eviction policy used when the Redis reaches its plan's memory.

    \b
    noeviction       returns errors when memory limit is reached (the default)
    allkeys-lfu      removes less frequently used keys first
    volatile-lfu     removes less frequently used keys first that have an expiry set
    allkeys-lru      removes less recently used keys first
    volatile-lru     removes less recently used keys first that have an expiry set
    allkeys-random   evicts random keys
    volatile-random  evicts random keys but only those that have an expiry set
    volatile-ttl     only evicts keys with an expiry set and a short TTL
    """
    app_name = env.resolve_app(app)
    client = env.client()
    addon = pick_redis(app_name, client.addons(app_name), database)
    setting = set_maxmemory_policy(client, addon["name"], policy)["maxmemory_policy"]
    value = setting["value"]
    config_vars = ", ".join(addon.get("config_vars", []))
    click.echo(f"Maxmemory policy for {addon['name']} ({config_vars}) set to {value}.")
    click.echo(f"{value} {setting['values'].get(value, '')}.")


COMMANDS: list[click.Command] = [cli, info, maxmemory]
