"""`kapal pg:info`, `pg:ps`, `pg:kill`, `pg:credentials:rotate`, `pg:reset` and `pg:promote`,
for kapal-postgresql add-ons (pg:psql is in kapal.cli.addons, pg:backups in kapal.cli.pgbackups).
DATABASE is an attachment (DATABASE), its config var (DATABASE_URL) or an add-on's name."""

from __future__ import annotations

from collections.abc import Sequence

import click

from kapal.cli.addons import pick_attachment
from kapal.cli.confirm import confirm_app
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, columns, hexagon, key_values
from kapal.client import pg as api
from kapal.client.addons import addon_attachments
from kapal.client.http import KapalClient
from kapal.client.pg import PgDatabaseInfo, PgSession

database_argument = click.argument("database", required=False)


def info_lines(databases: Sequence[PgDatabaseInfo]) -> list[str]:
    """One `=== DATABASE_URL, ...` block per database, Heroku's pg:info layout."""
    lines: list[str] = []
    for database in databases:
        if lines:
            lines.append("")
        heading = ", ".join(database["config_vars"]) or database["addon"]["name"]
        lines += [f"=== {heading}", ""]
        lines += key_values([(row["name"], ", ".join(row["values"])) for row in database["info"]])
    return lines


def running_for(seconds: float | None) -> str:
    """`00:01:05`: hours, minutes and seconds since the query started."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    return f"{whole // 3600:02}:{whole // 60 % 60:02}:{whole % 60:02}"


def sessions_table(addon: str, sessions: Sequence[PgSession], *, idle: bool) -> list[str]:
    if not sessions:
        return [f"No {'' if idle else 'active '}connections to {addon}."]
    rows = [["PID", "State", "Running for", "Waiting", "Query"]]
    rows += [
        [
            str(s["pid"]),
            s["state"],
            running_for(s["running_for"]),
            "yes" if s["waiting"] else "no",
            " ".join(s["query"].split()),
        ]
        for s in sessions
    ]
    return columns(rows)


def _addon_name(client: KapalClient, app: str, database: str | None) -> str:
    """The add-on DATABASE names on the app, for messages that say which one is changed."""
    return pick_attachment(app, addon_attachments(client, app), database)["addon"]["name"]


@click.command("pg:info")
@app_option
@database_argument
@pass_env
def info(env: CliEnv, app: str | None, database: str | None) -> None:
    """Show the plan, status, connections, size and tables of the app's Postgres databases."""
    app_name = env.resolve_app(app)
    client = env.client()
    if database is None:
        databases = api.pg_databases(client, app_name)
        if not databases:
            raise CliError(f"{hexagon(app_name)} has no Postgres databases.")
    else:
        databases = [api.pg_database(client, app_name, database)]
    for line in info_lines(databases):
        click.echo(line)


@click.command("pg:ps")
@app_option
@database_argument
@click.option("-v", "--verbose", is_flag=True, help="Show idle connections too.")
@pass_env
def ps(env: CliEnv, app: str | None, database: str | None, verbose: bool) -> None:
    """Show the queries running on the database (DATABASE by default)."""
    app_name = env.resolve_app(app)
    client = env.client()
    target = database or "DATABASE"
    sessions = api.pg_sessions(client, app_name, target, include_idle=verbose)
    for line in sessions_table(target, sessions, idle=verbose):
        click.echo(line)


@click.command("pg:kill")
@app_option
@click.argument("pid", type=int)
@database_argument
@click.option("-f", "--force", is_flag=True, help="End the connection, not only its query.")
@pass_env
def kill(env: CliEnv, app: str | None, pid: int, database: str | None, force: bool) -> None:
    """Cancel the query of connection PID (find it with pg:ps), or end it with --force."""
    app_name = env.resolve_app(app)
    client = env.client()
    what = f"Terminating connection {pid}" if force else f"Cancelling the query of connection {pid}"
    with action(f"{what} on {hexagon(app_name)}"):
        api.pg_kill(client, app_name, database or "DATABASE", pid, force=force)


@click.command("pg:credentials:rotate")
@app_option
@database_argument
@click.option("--confirm", metavar="APP", help="The app's name, to rotate without a prompt.")
@pass_env
def rotate(env: CliEnv, app: str | None, database: str | None, confirm: str | None) -> None:
    """Give the database a new password: connections using the old one are ended, and every
    app it is attached to gets the new URL in a release (its dynos restart)."""
    app_name = env.resolve_app(app)
    client = env.client()
    addon = _addon_name(client, app_name, database)
    would = (
        f"rotate the credentials of {addon} on {hexagon(app_name)}: connections using them "
        "are ended and the apps using it restart"
    )
    confirm_app(env, app_name, confirm, would=would, aborted="Nothing was changed.")
    with action(f"Rotating all credentials on {addon}"):
        rotation = api.pg_rotate_credentials(client, app_name, addon)
    for release in rotation["releases"]:
        name = release["app"].get("name", release["app"]["id"])
        click.echo(f"Released the new URL to {hexagon(name)} as v{release['version']}.")


@click.command("pg:reset")
@app_option
@database_argument
@click.option("--confirm", metavar="APP", help="The app's name, to reset without a prompt.")
@pass_env
def reset(env: CliEnv, app: str | None, database: str | None, confirm: str | None) -> None:
    """Delete every table and row of the database; its URL stays the same."""
    app_name = env.resolve_app(app)
    client = env.client()
    addon = _addon_name(client, app_name, database)
    would = f"destroy all data in {addon} on {hexagon(app_name)}"
    confirm_app(env, app_name, confirm, would=would, aborted="Nothing was changed.")
    with action(f"Resetting {addon}"):
        api.pg_reset(client, app_name, addon)


@click.command("pg:promote")
@app_option
@click.argument("database")
@pass_env
def promote(env: CliEnv, app: str | None, database: str) -> None:
    """Make DATABASE the app's DATABASE_URL; the one it replaces keeps a name of its own."""
    app_name = env.resolve_app(app)
    client = env.client()
    addon = _addon_name(client, app_name, database)
    with action(f"Promoting {addon} to DATABASE_URL on {hexagon(app_name)}") as act:
        promotion = api.pg_promote(client, app_name, addon)
        act.done(f"done, v{promotion['release']['version']}")
    previous = promotion["previous"]
    if previous is not None:
        click.echo(f"{previous['name']} stays reachable as {previous['config_var']}.")


COMMANDS: list[click.Command] = [info, ps, kill, rotate, reset, promote]
ALIASES: dict[str, str] = {"pg": "pg:info"}
