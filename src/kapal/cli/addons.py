"""`kapal addons`, `addons:create`, `addons:destroy`, `addons:info` and `pg:psql`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from urllib.parse import unquote, urlsplit

import click

from kapal.cli.confirm import confirm_app
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.localclient import config_url, find_program, run_attached
from kapal.cli.output import action, columns, echo_header, format_time, hexagon, key_values
from kapal.client.addons import AddonAttachment, addon_attachments
from kapal.client.types import Addon

# How Heroku's CLI words add-on states.
STATES = {
    "provisioned": "created",
    "provisioning": "creating",
    "deprovisioning": "destroying",
    "deprovisioned": "errored",
}
NO_PSQL = (
    "The local psql command could not be located. Install PostgreSQL's client "
    "(for example `apt-get install postgresql-client`)."
)


def parse_option(text: str) -> tuple[str, str]:
    """`--config region=eu` -> ("region", "eu")."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CliError(f"--config {text!r}: expected KEY=VALUE.")
    return key.strip(), value


def short_plan(addon: Addon) -> str:
    """`kapal-postgresql:essential-0` -> `essential-0`."""
    name = addon.get("plan", {}).get("name", "?")
    return name.partition(":")[2] or name


def addons_table(
    app: str, addons: Sequence[Addon], attachments: Sequence[AddonAttachment]
) -> list[str]:
    """Heroku's table: one row per add-on, a `└─ as NAME` line per attachment."""
    if not addons:
        return [f"No add-ons for app {app}."]
    rows = [["Add-on", "Plan", "State"]]
    for addon in addons:
        service = addon.get("addon_service", {}).get("name", "?")
        state = addon.get("state", "")
        rows.append([f"{service} ({addon['name']})", short_plan(addon), STATES.get(state, state)])
    lines = columns(rows)
    out = [" " + lines[0], " " + "─" * max(len(line) for line in lines)]
    for addon, line in zip(addons, lines[1:], strict=True):
        out.append(" " + line)
        out.extend(f" └─ as {a['name']}" for a in attachments if a["addon"]["id"] == addon["id"])
        out.append("")
    return out[:-1]


def info_lines(
    addon: Addon, attachments: Sequence[AddonAttachment], tz: tzinfo | None
) -> list[str]:
    owner = addon.get("app", {}).get("name", "?")
    names = [f"{a['app'].get('name', owner)}::{a['name']}" for a in attachments]
    state = addon.get("state", "")
    created = addon.get("created_at")
    return key_values(
        [
            ("Attachments", ", ".join(names)),
            ("Installed at", format_time(created, tz) if created else ""),
            ("Owning app", owner),
            ("Plan", addon.get("plan", {}).get("name", "?")),
            ("Price", "free"),
            ("State", STATES.get(state, state)),
        ]
    )


def pick_attachment(
    app: str, attachments: Sequence[AddonAttachment], wanted: str | None
) -> AddonAttachment:
    """By attachment name (`DATABASE`), its config var (`DATABASE_URL`) or add-on name."""
    databases = [
        a for a in attachments if "postgresql" in a["addon"].get("plan", {}).get("name", "")
    ]
    if not databases:
        raise CliError(f"{hexagon(app)} has no databases.")
    key = wanted or "DATABASE"
    for attachment in databases:
        if key in (attachment["name"], f"{attachment['name']}_URL", attachment["addon"]["name"]):
            return attachment
    valid = ", ".join(f"{a['name']}_URL" for a in databases)
    raise CliError(f"Unknown database: {key}. Valid options are: {valid}")


def psql_environment(url: str, base: Mapping[str, str]) -> dict[str, str]:
    """libpq's PG* variables from a `postgres://` URL, so the password stays off argv."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        raise CliError("The database URL in the app's config vars is not a postgres:// URL.")
    env = dict(base)
    env.update(
        PGHOST=parts.hostname,
        PGPORT=str(parts.port or 5432),
        PGUSER=unquote(parts.username or ""),
        PGPASSWORD=unquote(parts.password or ""),
        PGDATABASE=unquote(parts.path.lstrip("/")),
    )
    # Kapal's own PostgreSQL speaks no TLS on localhost; elsewhere insist on it, like Heroku.
    env.setdefault("PGSSLMODE", "prefer" if parts.hostname == "localhost" else "require")
    return env


@click.command("addons")
@app_option
@pass_env
def list_addons(env: CliEnv, app: str | None) -> None:
    """List the app's add-ons and their attachments."""
    name = env.resolve_app(app)
    client = env.client()
    addons = client.addons(name)
    attachments = addon_attachments(client, name) if addons else []
    for line in addons_table(name, addons, attachments):
        click.echo(line)


@click.command("addons:create")
@app_option
@click.argument("service_plan", metavar="SERVICE[:PLAN]")
@click.option(
    "--as",
    "attachment",
    metavar="NAME",
    help="Attachment name: NAME_URL is set (default: the service's, DATABASE, REDIS, MYSQL...).",
)
@click.option("--name", metavar="NAME", help="Name of the add-on (default: generated).")
@click.option(
    "--wait",
    is_flag=True,
    help="Return once the add-on is provisioned (Kapal's add-ons always are by then).",
)
@click.option(
    "--config",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option for a third-party provider's add-on (repeat for each).",
)
@pass_env
def create(
    env: CliEnv,
    app: str | None,
    service_plan: str,
    attachment: str | None,
    name: str | None,
    wait: bool,
    options: tuple[str, ...],
) -> None:
    """Provision an add-on such as kapal-postgresql:essential-0 and attach it to the app.

    `kapal addons:services` lists the services, `kapal addons:plans SERVICE` their plans."""
    del wait  # provisioning finishes before the API answers
    app_name = env.resolve_app(app)
    config = dict(parse_option(o) for o in options)
    client = env.client()
    with action(f"Creating {service_plan} on {hexagon(app_name)}"):
        addon = client.create_addon(
            app_name, service_plan, attachment_name=attachment, name=name, config=config
        )
    if addon.get("provision_message"):
        click.echo(addon["provision_message"])
    config_vars = ", ".join(addon.get("config_vars", []))
    click.echo(f"Created {addon['name']} as {config_vars}" if config_vars else addon["name"])
    click.echo(f"Use kapal addons:info {addon['name']} to see its details.")


@click.command("addons:destroy")
@app_option
@click.argument("addon_name", metavar="NAME")
@click.option("--confirm", metavar="APP", help="The app's name, to destroy without a prompt.")
@pass_env
def destroy(env: CliEnv, app: str | None, addon_name: str, confirm: str | None) -> None:
    """Permanently destroy an add-on and all its data."""
    app_name = env.resolve_app(app)
    would = f"destroy {addon_name} on {hexagon(app_name)} and all its data"
    confirm_app(env, app_name, confirm, would=would, aborted="Aborted.")
    client = env.client()
    with action(f"Destroying {addon_name} on {hexagon(app_name)}"):
        client.destroy_addon(app_name, addon_name)


@click.command("addons:info")
@app_option
@click.argument("addon_name", metavar="NAME")
@pass_env
def info(env: CliEnv, app: str | None, addon_name: str) -> None:
    """Show an add-on's plan, state and attachments."""
    app_name = env.resolve_app(app)
    client = env.client()
    addon = client.addon(app_name, addon_name)
    attachments = [
        a for a in addon_attachments(client, app_name) if a["addon"]["id"] == addon["id"]
    ]
    echo_header(addon["name"])
    for line in info_lines(addon, attachments, env.tz):
        click.echo(line)


@click.command("pg:psql")
@app_option
@click.argument("database", required=False)
@click.option("-c", "--command", "sql", metavar="SQL", help="Run one SQL command and exit.")
@pass_env
def psql(env: CliEnv, app: str | None, database: str | None, sql: str | None) -> None:
    """Open psql on the app's database (DATABASE by default), or run one command with -c."""
    app_name = env.resolve_app(app)
    client = env.client()
    attachment = pick_attachment(app_name, addon_attachments(client, app_name), database)
    url = config_url(client, app_name, f"{attachment['name']}_URL")
    argv = [find_program(env, "psql", NO_PSQL)]
    if sql is not None:
        argv += ["-c", sql]
    else:
        prompt = f"{app_name}::{attachment['name']}"
        argv += ["--set", f"PROMPT1={prompt}%R%# ", "--set", f"PROMPT2={prompt}%R%# "]
    run_attached(attachment["addon"]["name"], argv, psql_environment(url, env.environ))


COMMANDS: list[click.Command] = [list_addons, create, destroy, info, psql]
ALIASES: dict[str, str] = {
    "addons:add": "addons:create",
    "addons:remove": "addons:destroy",
    "psql": "pg:psql",
}
