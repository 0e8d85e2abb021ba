"""`kapal ps`, `ps:scale`, `ps:restart`: dynos and the formation."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from itertools import groupby

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, ago, format_time, header, hexagon
from kapal.client.types import Dyno, Formation, FormationUpdate
from kapal.domain.errors import KapalError
from kapal.domain.formation import ScaleChange, parse_scale_arg


def _dyno_order(dyno: Dyno) -> tuple[str, int, str]:
    """web.2 before web.10."""
    kind, _, number = dyno["name"].partition(".")
    return (kind, int(number) if number.isdigit() else 0, dyno["name"])


def _since(dyno: Dyno, now: datetime, tz: tzinfo | None) -> str:
    stamp = dyno["updated_at"]
    return f"{dyno['state']} {format_time(stamp, tz)} ({ago(stamp, now)})"


def format_ps(dynos: list[Dyno], now: datetime, tz: tzinfo | None = None) -> list[str]:
    """One-off dynos first, then one block per (type, size, command), blocks blank-separated."""
    blocks: list[list[str]] = []
    one_off = sorted((d for d in dynos if d["type"] == "run"), key=_dyno_order)
    if one_off:
        lines = [header(f"run: one-off processes ({len(one_off)})"), ""]
        lines += [
            f"{d['name']} ({d['size']}): {_since(d, now, tz)}: {d['command']}" for d in one_off
        ]
        blocks.append(lines)
    formation = sorted((d for d in dynos if d["type"] != "run"), key=_dyno_order)
    for (kind, size, command), group in groupby(
        formation, key=lambda d: (d["type"], d["size"], d["command"])
    ):
        members = list(group)
        lines = [header(f"{kind} ({size}): {command} ({len(members)})"), ""]
        lines += [f"{d['name']}: {_since(d, now, tz)}" for d in members]
        blocks.append(lines)
    out: list[str] = []
    for block in blocks:
        if out:
            out.append("")
        out += block
    return out


@click.command("ps")
@app_option
@click.argument("process_type", required=False)
@pass_env
def ps(env: CliEnv, app: str | None, process_type: str | None) -> None:
    """List the app's dynos (optionally of one PROCESS_TYPE)."""
    name = env.resolve_app(app)
    dynos = env.client().dynos(name)
    if process_type:
        dynos = [d for d in dynos if d["type"] == process_type]
        if not dynos:
            raise CliError(f"No {process_type} dynos on {hexagon(name)}")
    if not dynos:
        click.echo(f"No dynos on {hexagon(name)}")
        return
    for line in format_ps(dynos, env.now(), env.tz):
        click.echo(line)


def formation_summary(rows: list[Formation]) -> str:
    """`web=1:Eco worker=0:Eco`."""
    return " ".join(f"{f['type']}={f['quantity']}:{f['size']}" for f in sorted(rows, key=_type))


def _type(row: Formation) -> str:
    return row["type"]


def scale_updates(changes: list[ScaleChange], current: list[Formation]) -> list[FormationUpdate]:
    """Absolute quantities for `web=2`, `worker+1`, `web-1`, computed from the current formation."""
    quantities = {f["type"]: f["quantity"] for f in current}
    updates: dict[str, FormationUpdate] = {}
    for change in changes:
        update = updates.setdefault(change.type, {"type": change.type})
        base = update.get("quantity", quantities.get(change.type, 0))
        update["quantity"] = change.apply(base)
        if change.size:
            update["size"] = change.size
    return list(updates.values())


def parse_changes(args: tuple[str, ...]) -> list[ScaleChange]:
    try:
        return [parse_scale_arg(arg) for arg in args]
    except KapalError as exc:
        raise CliError(exc.message) from exc


@click.command("ps:scale")
@app_option
@click.argument("changes", nargs=-1, metavar="[TYPE=N[:SIZE] | TYPE+N | TYPE-N]...")
@pass_env
def scale(env: CliEnv, app: str | None, changes: tuple[str, ...]) -> None:
    """Scale dynos: `web=2`, `worker+1`, `web-1`, `web=1:basic`; with no changes, show them."""
    name = env.resolve_app(app)
    parsed = parse_changes(changes)
    client = env.client()
    current = client.formation(name)
    if not parsed:
        if not current:
            click.echo(f"No process types on {hexagon(name)}.")
            click.echo("Upload a Procfile to add process types (git push kapal main).")
            return
        click.echo(formation_summary(current))
        return
    updates = scale_updates(parsed, current)
    with action("Scaling dynos") as status:
        result = client.scale(name, updates)
        wanted = {u["type"] for u in updates}
        shown = sorted((f for f in result if f["type"] in wanted), key=_type)
        running = ", ".join(f"{f['type']} at {f['quantity']}:{f['size']}" for f in shown)
        status.done(f"done, now running {running}")


_DYNO_NAME = re.compile(r"^[\w-]+\.\d+$")


@click.command("ps:restart")
@app_option
@click.argument("target", required=False, metavar="[TYPE | DYNO]")
@click.option("-p", "--process-type", help="Restart the dynos of one process type.")
@click.option("-d", "--dyno-name", help="Restart one dyno, e.g. web.1.")
@pass_env
def restart(
    env: CliEnv,
    app: str | None,
    target: str | None,
    process_type: str | None,
    dyno_name: str | None,
) -> None:
    """Restart all dynos, those of one process type (`web`) or one dyno (`web.1`)."""
    name = env.resolve_app(app)
    if target and _DYNO_NAME.match(target):
        dyno_name = dyno_name or target
    elif target:
        process_type = process_type or target
    if dyno_name:
        what = f"dyno {dyno_name}"
    elif process_type:
        what = f"{process_type} dynos"
    else:
        what = "dynos"
    with action(f"Restarting {what} on {hexagon(name)}"):
        env.client().restart(name, dyno=dyno_name, process_type=process_type)


COMMANDS: list[click.Command] = [ps, scale, restart]
ALIASES = {"scale": "ps:scale", "restart": "ps:restart"}
