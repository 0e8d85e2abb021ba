"""`kapal mysql:cli` and `mysql:info`: the local mysql client on an app's MySQL database."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from urllib.parse import unquote, urlsplit

import click

from kapal.addons.catalog import MYSQL
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.localclient import config_url, find_program, run_attached
from kapal.cli.output import echo_header, hexagon, key_values
from kapal.client.addons import AddonAttachment, addon_attachments

NO_MYSQL = (
    "The local mysql command could not be located. Install MariaDB's or MySQL's client "
    "(for example `apt-get install mariadb-client`)."
)
# One row: the client's own connection counts among the user's (it sees only its own).
INFO_SQL = (
    "SELECT VERSION(), "
    "(SELECT COUNT(*) FROM information_schema.PROCESSLIST), @@max_user_connections, "
    "(SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()), "
    "(SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = DATABASE())"
)
INFO_TIMEOUT = 30.0


def is_mysql(attachment: AddonAttachment) -> bool:
    plan = attachment["addon"].get("plan", {}).get("name", "")
    return plan.startswith(f"{MYSQL.name}:")


def pick_mysql(
    app: str, attachments: Sequence[AddonAttachment], wanted: str | None
) -> AddonAttachment:
    """By attachment name (`MYSQL`), config var (`MYSQL_URL`) or add-on name; without one,
    MYSQL or else the app's only MySQL database."""
    databases = [a for a in attachments if is_mysql(a)]
    if not databases:
        raise CliError(f"{hexagon(app)} has no MySQL databases.")
    primary = MYSQL.primary_attachment
    if wanted is None and len(databases) == 1:
        return databases[0]
    key = wanted or primary
    for attachment in databases:
        if key in (attachment["name"], f"{attachment['name']}_URL", attachment["addon"]["name"]):
            return attachment
    valid = ", ".join(f"{a['name']}_URL" for a in databases)
    raise CliError(f"Unknown database: {key}. Valid options are: {valid}")


def mysql_arguments(url: str, base: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The client's options for a `mysql://` URL, and its environment with the password
    in MYSQL_PWD: never on the command line, where `ps` would show it."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise CliError("The database URL in the app's config vars is not a mysql:// URL.")
    args = [
        "--protocol=TCP",  # as the URL says, also for `localhost` (the socket otherwise)
        f"--host={parts.hostname}",
        f"--port={parts.port or 3306}",
        f"--user={unquote(parts.username or '')}",
        f"--database={unquote(parts.path.lstrip('/'))}",
    ]
    env = dict(base)
    env["MYSQL_PWD"] = unquote(parts.password or "")
    return args, env


def human_size(size: int) -> str:
    """`512 bytes`, `48.5 KB`, `1 GB`."""
    if size < 1024:
        return f"{size} bytes"
    value, unit = size / 1024, "KB"
    for bigger in ("MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def info_rows(attachment: AddonAttachment, row: str) -> list[tuple[str, str]]:
    """pg:info's lines for the INFO_SQL row the client printed (tab-separated)."""
    fields = row.rstrip("\n").split("\t")
    if len(fields) != 5 or not all(f.isdigit() for f in fields[1:]):
        raise CliError(f"Unexpected answer from the mysql client: {row.strip()!r}")
    version, connections, limit, tables, size = fields
    plan_name = attachment["addon"].get("plan", {}).get("name", "?")
    plan = MYSQL.plan(plan_name.partition(":")[2])
    storage = f" / {human_size(plan.storage_mb * 1024**2)}" if plan else ""
    return [
        ("Plan", plan_name.partition(":")[2] or plan_name),
        ("Status", "Available"),
        ("Connections", f"{connections}/{limit}" if limit != "0" else connections),
        ("MySQL Version", version),
        ("Data Size", human_size(int(size)) + storage),
        ("Tables", tables),
        ("Add-on", attachment["addon"]["name"]),
    ]


def _connect(
    env: CliEnv, app: str | None, database: str | None
) -> tuple[str, AddonAttachment, str, list[str], dict[str, str]]:
    """The app's name, the chosen attachment, and the client's program, options and env."""
    app_name = env.resolve_app(app)
    client = env.client()
    attachment = pick_mysql(app_name, addon_attachments(client, app_name), database)
    url = config_url(client, app_name, f"{attachment['name']}_URL")
    args, child_env = mysql_arguments(url, env.environ)
    return app_name, attachment, find_program(env, "mysql", NO_MYSQL), args, child_env


@click.command("mysql:cli")
@app_option
@click.argument("database", required=False)
@click.option("-e", "--execute", "sql", metavar="SQL", help="Run SQL and exit.")
@pass_env
def cli(env: CliEnv, app: str | None, database: str | None, sql: str | None) -> None:
    """Open the mysql client on the app's MySQL database (MYSQL by default), or run SQL."""
    app_name, attachment, program, args, child_env = _connect(env, app, database)
    argv = [program, *args]
    if sql is not None:
        argv += ["--execute", sql]
    else:
        argv.append(f"--prompt={app_name}::{attachment['name']}> ")
    run_attached(attachment["addon"]["name"], argv, child_env)


@click.command("mysql:info")
@app_option
@click.argument("database", required=False)
@pass_env
def info(env: CliEnv, app: str | None, database: str | None) -> None:
    """Show the plan, connections, size and server version of the app's MySQL database."""
    _, attachment, program, args, child_env = _connect(env, app, database)
    argv = [program, *args, "--batch", "--skip-column-names", "--execute", INFO_SQL]
    try:
        done = subprocess.run(
            argv, env=child_env, capture_output=True, text=True, timeout=INFO_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise CliError("The MySQL server did not answer in time.") from None
    if done.returncode != 0:
        # The client's messages name the user and host, never the password.
        raise CliError(done.stderr.strip() or f"mysql exited with status {done.returncode}.")
    echo_header(f"{attachment['name']}_URL")
    for line in key_values(info_rows(attachment, done.stdout)):
        click.echo(line)


COMMANDS: list[click.Command] = [cli, info]
