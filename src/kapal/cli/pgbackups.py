"""`kapal pg:backups` and its commands: capture, info, restore, download, delete, schedule,
unschedule, schedules."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path

import click

from kapal.cli.addons import pick_attachment
from kapal.cli.confirm import confirm_app
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, columns, echo_header, hexagon, key_values, parse_time
from kapal.client import pgbackups as api
from kapal.client.addons import AddonAttachment, addon_attachments
from kapal.client.http import KapalClient
from kapal.client.pgbackups import Backup, BackupSchedule
from kapal.domain.pgbackups import is_backup_ref

KINDS = {"capture": "Manual", "scheduled": "Scheduled", "restore": "Copy before a restore"}
POLL_MAX = 2.0  # seconds between progress checks, at most


def human_size(size: int | None) -> str:
    """`512B`, `7.68KB`, `12.3MB`, `1.5GB` (powers of 1024, as Heroku prints sizes)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            break
        value /= 1024
    text = str(int(value)) if unit == "B" else f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}{unit}"


def _time(value: str | None, tz: tzinfo | None) -> str:
    """`2026-11-27 11:20:00 +0000`, pg:backups' way."""
    return parse_time(value).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %z") if value else ""


def status_text(backup: Backup, tz: tzinfo | None) -> str:
    if backup["status"] == "succeeded":
        return f"Completed {_time(backup['finished_at'], tz)}"
    return backup["status"].capitalize()


def backups_table(backups: Sequence[Backup], tz: tzinfo | None) -> list[str]:
    if not backups:
        return ["No backups. Capture one with kapal pg:backups:capture."]
    rows = [["ID", "Created at", "Status", "Size", "Database"]]
    rows += [
        [
            b["name"],
            _time(b["created_at"], tz),
            status_text(b, tz),
            human_size(b["size_bytes"]),
            b["addon"]["name"],
        ]
        for b in backups
    ]
    lines = columns(rows)
    return [lines[0], "─" * max(len(line) for line in lines), *lines[1:]]


def schedule_lines(schedules: Sequence[BackupSchedule]) -> list[str]:
    """`DATABASE_URL: daily at 02:00 UTC`, one line per scheduled database."""
    lines = []
    for schedule in schedules:
        names = [f"{name}_URL" for name in schedule["attachments"]]
        label = ", ".join(names) or schedule["addon"]["name"]
        lines.append(f"{label}: daily at {schedule['at']}")
    return lines


def info_lines(backup: Backup, tz: tzinfo | None) -> list[str]:
    size, original = backup["size_bytes"], backup["database_bytes"]
    backup_size = human_size(size)
    if size is not None and original:
        backup_size += f" ({max(0, round(100 - 100 * size / original))}% compression)"
    rows = [
        ("Database", backup["addon"]["name"]),
        ("Started at", _time(backup["created_at"], tz)),
        ("Finished at", _time(backup["finished_at"], tz)),
        ("Status", status_text(backup, tz)),
        ("Type", KINDS.get(backup["kind"], backup["kind"])),
        ("Original DB Size", human_size(original)),
        ("Backup Size", backup_size),
    ]
    if backup["error"]:
        rows.append(("Error", backup["error"]))
    return key_values([(k, v) for k, v in rows if v])


def download_path(cwd: Path, output: str | None) -> Path:
    """-o FILE, else latest.dump, else latest.dump.1, .2... (the first that is free)."""
    if output:
        return cwd / output
    path = cwd / "latest.dump"
    n = 1
    while path.exists():
        path = cwd / f"latest.dump.{n}"
        n += 1
    return path


def _database(client: KapalClient, app: str, database: str | None) -> AddonAttachment:
    return pick_attachment(app, addon_attachments(client, app), database)


def _newest(backups: Sequence[Backup], app: str) -> Backup:
    done = [b for b in backups if b["status"] == "succeeded"]
    if not done:
        raise CliError(f"No backups on {hexagon(app)}. Capture one with kapal pg:backups:capture.")
    return done[0]


@click.command("pg:backups")
@app_option
@pass_env
def list_backups(env: CliEnv, app: str | None) -> None:
    """List the app's database backups and backup schedules."""
    name = env.resolve_app(app)
    client = env.client()
    echo_header("Backups")
    for line in backups_table(api.backups(client, name), env.tz):
        click.echo(line)
    click.echo()
    echo_header("Backup Schedules")
    schedules = schedule_lines(api.schedules(client, name))
    for line in schedules or ["No backup schedules. Set one with kapal pg:backups:schedule."]:
        click.echo(line)


@click.command("pg:backups:capture")
@app_option
@click.argument("database", required=False)
@pass_env
def capture(env: CliEnv, app: str | None, database: str | None) -> None:
    """Back up a database (DATABASE by default) and wait until the backup is complete."""
    name = env.resolve_app(app)
    client = env.client()
    attachment = _database(client, name, database)
    addon = attachment["addon"]["name"]
    with action(f"Starting backup of {addon}"):
        backup = api.capture(client, name, addon)
    click.echo(
        "\nUse Ctrl-C at any time to stop monitoring progress; the backup will continue "
        f"running.\nUse kapal pg:backups:info {backup['name']} to check progress.\n",
        err=True,
    )
    with action(f"Backing up {attachment['name']} to {backup['name']}"):
        delay = 0.1
        while backup["status"] == "running":
            backup = api.backup(client, name, backup["name"])
            if backup["status"] == "running":
                time.sleep(delay)
                delay = min(POLL_MAX, delay * 2)
        if backup["status"] != "succeeded":
            raise CliError(f"Backup {backup['name']} failed: {backup['error'] or 'no reason'}")


@click.command("pg:backups:info")
@app_option
@click.argument("backup_name", metavar="BACKUP", required=False)
@pass_env
def info(env: CliEnv, app: str | None, backup_name: str | None) -> None:
    """Show a backup's status and sizes (the newest backup by default)."""
    name = env.resolve_app(app)
    client = env.client()
    if backup_name is None:
        backups = api.backups(client, name)
        if not backups:
            raise CliError(f"No backups on {hexagon(name)}.")
        backup = backups[0]
    else:
        backup = api.backup(client, name, backup_name)
    echo_header(f"Backup {backup['name']}")
    for line in info_lines(backup, env.tz):
        click.echo(line)


@click.command("pg:backups:restore")
@app_option
@click.argument("args", nargs=-1, metavar="[BACKUP] [DATABASE]")
@click.option("--confirm", metavar="APP", help="The app's name, to restore without a prompt.")
@pass_env
def restore(env: CliEnv, app: str | None, args: tuple[str, ...], confirm: str | None) -> None:
    """Overwrite a database (DATABASE by default) with a backup: b003, APP::b003 (another
    app's), or by default the database's newest. Its data is first saved as r001, r002..."""
    if len(args) > 2:
        raise CliError("Too many arguments: give at most a BACKUP and a DATABASE.")
    backup: str | None = None
    database: str | None = None
    if len(args) == 2:
        backup, database = args
    elif args:
        backup, database = (args[0], None) if is_backup_ref(args[0]) else (None, args[0])
    name = env.resolve_app(app)
    client = env.client()
    attachment = _database(client, name, database)
    addon = attachment["addon"]["name"]
    label = backup or "its newest backup"
    would = f"overwrite the data of {addon} on {hexagon(name)} with {label}"
    confirm_app(env, name, confirm, would=would, aborted="Aborted.")
    with action(f"Restoring {label} to {addon}") as act:
        done = api.restore(client, name, backup, addon)
        act.done(f"done, {done['backup']['name']}" if backup is None else "done")
    copy = done["safety_copy"]["name"]
    click.echo(
        f"What {addon} held before was saved as {copy}; "
        f"kapal pg:backups:restore {copy} {attachment['name']} -a {name} puts it back.",
        err=True,
    )


@click.command("pg:backups:download")
@app_option
@click.argument("backup_name", metavar="BACKUP", required=False)
@click.option("-o", "--output", metavar="FILE", help="Where to save it (default latest.dump).")
@pass_env
def download(env: CliEnv, app: str | None, backup_name: str | None, output: str | None) -> None:
    """Download a backup (the newest by default) as a pg_dump file for pg_restore."""
    name = env.resolve_app(app)
    client = env.client()
    if backup_name is None:
        backup_name = _newest(api.backups(client, name), name)["name"]
    path = download_path(env.cwd, output)
    partial = path.with_name(f".{path.name}.partial")
    with action(f"Downloading {backup_name} to {path.name}") as act:
        size = 0
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out, api.download(client, name, backup_name) as chunks:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            partial.replace(path)
        except OSError as exc:
            raise CliError(f"Could not write {path}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        act.done(f"done, {human_size(size)}")


@click.command("pg:backups:delete")
@app_option
@click.argument("backup_name", metavar="BACKUP")
@click.option("--confirm", metavar="APP", help="The app's name, to delete without a prompt.")
@pass_env
def delete(env: CliEnv, app: str | None, backup_name: str, confirm: str | None) -> None:
    """Delete a backup and its file for good."""
    name = env.resolve_app(app)
    would = f"delete backup {backup_name} of {hexagon(name)} for good"
    confirm_app(env, name, confirm, would=would, aborted="Aborted.")
    client = env.client()
    with action(f"Deleting backup {backup_name} of {hexagon(name)}"):
        api.delete(client, name, backup_name)


@click.command("pg:backups:schedule")
@app_option
@click.argument("database", required=False)
@click.option("--at", "at", required=True, metavar="'HH:00 TIMEZONE'", help="e.g. '02:00 UTC'.")
@pass_env
def schedule(env: CliEnv, app: str | None, database: str | None, at: str) -> None:
    """Back up a database (DATABASE by default) every day at an hour: --at '02:00 UTC' or
    '02:00 Europe/Berlin'. The newest 7 daily backups are kept."""
    name = env.resolve_app(app)
    client = env.client()
    attachment = _database(client, name, database)
    addon = attachment["addon"]["name"]
    with action(f"Scheduling automatic daily backups of {addon} at {at}") as act:
        done = api.schedule(client, name, addon, at)
        if done["at"] != at:
            act.done(f"done, {done['at']}")


@click.command("pg:backups:unschedule")
@app_option
@click.argument("database", required=False)
@pass_env
def unschedule(env: CliEnv, app: str | None, database: str | None) -> None:
    """Stop the daily backups of a database (DATABASE by default)."""
    name = env.resolve_app(app)
    client = env.client()
    addon = _database(client, name, database)["addon"]["name"]
    with action(f"Stopping automatic backups of {addon}"):
        api.unschedule(client, name, addon)


@click.command("pg:backups:schedules")
@app_option
@pass_env
def schedules(env: CliEnv, app: str | None) -> None:
    """List the app's daily backup schedules."""
    name = env.resolve_app(app)
    lines = schedule_lines(api.schedules(env.client(), name))
    if not lines:
        click.echo(f"No backup schedules on {hexagon(name)}.")
        click.echo("Use kapal pg:backups:schedule to set one up.")
        return
    echo_header("Backup Schedules")
    for line in lines:
        click.echo(line)


COMMANDS: list[click.Command] = [
    list_backups,
    capture,
    info,
    restore,
    download,
    delete,
    schedule,
    unschedule,
    schedules,
]
