"""`kapal ps`, `ps:scale`, `ps:type`, `ps:restart`, `ps:stop`: dynos and the formation."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from itertools import groupby

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, ago, columns, format_time, header, hexagon, within
from kapal.client.errors import KapalClientError
from kapal.client.http import KapalClient
from kapal.client.types import Dyno, Formation, FormationUpdate
from kapal.domain.eco import ECO, quota_lines
from kapal.domain.errors import KapalError
from kapal.domain.formation import ScaleChange, normalise_size, parse_scale_arg


def _dyno_order(dyno: Dyno) -> tuple[str, int, str]:
    """web.2 before web.10."""
    kind, _, number = dyno["name"].partition(".")
    return (kind, int(number) if number.isdigit() else 0, dyno["name"])


def _since(dyno: Dyno, now: datetime, tz: tzinfo | None) -> str:
    """`up 2026/11/26 13:39:22 +0000 (~ 6s ago)`; a crashed dyno also says when it restarts."""
    stamp = dyno["updated_at"]
    text = f"{dyno['state']} {format_time(stamp, tz)} ({ago(stamp, now)})"
    retry = dyno.get("restart_at")
    if dyno["state"] == "crashed" and retry:
        text += f", restarting {within(retry, now)}"
    return text


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
    # Blocks per (type, size, command): a type being resized shows its two sizes apart.
    formation = sorted(
        (d for d in dynos if d["type"] != "run"),
        key=lambda d: (d["type"], d["size"], d["command"], _dyno_order(d)),
    )
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
    client = env.client()
    dynos = client.dynos(name)
    for line in eco_quota(client, name):
        click.echo(line)
    if process_type:
        dynos = [d for d in dynos if d["type"] == process_type]
        if not dynos:
            raise CliError(f"No {process_type} dynos on {hexagon(name)}")
    if not dynos:
        click.echo(f"No dynos on {hexagon(name)}")
        return
    for line in format_ps(dynos, env.now(), env.tz):
        click.echo(line)


def eco_quota(client: KapalClient, app: str) -> list[str]:
    """For an eco app of the user's own, the account's eco dyno hours left this month and
    this app's use, then a blank line; nothing if they cannot be read (as Heroku's CLI)."""
    try:
        info = client.get_app(app)
        if info.get("process_tier") != ECO or info["owner"]["id"] != client.account()["id"]:
            return []
        quota = client.quota()
    except (KapalClientError, KeyError, TypeError):
        return []  # the quota is extra: the dynos are what `ps` is for
    used = next((a["quota_used"] for a in quota["apps"] if a["app_uuid"] == info["id"]), 0)
    return [*quota_lines(quota["account_quota"], quota["quota_used"], used), ""]


def formation_summary(rows: list[Formation]) -> str:
    """`web=1:Eco worker=0:Eco`."""
    return " ".join(f"{f['type']}={f['quantity']}:{f['size']}" for f in sorted(rows, key=_type))


def _type(row: Formation) -> str:
    return row["type"]


def _no_process_types(app: str) -> None:
    click.echo(f"No process types on {hexagon(app)}.")
    click.echo("Upload a Procfile to add process types (git push kapal main).")


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
            _no_process_types(name)
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


def _size(text: str) -> str:
    try:
        return normalise_size(text)
    except KapalError as exc:
        raise CliError(exc.message) from exc


def size_updates(args: tuple[str, ...], current: list[Formation]) -> list[FormationUpdate]:
    """`web=standard-2x worker=basic`: those types; a lone `standard-2x`: every type."""
    types = sorted(f["type"] for f in current)
    if not any("=" in arg for arg in args):
        if len(args) > 1:
            raise CliError("Give one SIZE for every process type, or TYPE=SIZE arguments.")
        size = _size(args[0])
        return [{"type": t, "size": size} for t in types]
    updates: list[FormationUpdate] = []
    for arg in args:
        type_, _, size = arg.partition("=")
        if not type_ or not size:
            raise CliError(f"Invalid argument {arg!r}: expected TYPE=SIZE, e.g. web=standard-2x.")
        if type_ not in types:
            raise CliError(
                f"Type {type_} not found in process formation.\nTypes: {', '.join(types)}"
            )
        updates.append({"type": type_, "size": _size(size)})
    return updates


def _table(rows: list[list[str]]) -> list[str]:
    lines = columns(rows)
    rule = "─" * max(len(line) for line in lines)
    return [" " + lines[0], " " + rule, *(" " + line for line in lines[1:])]


def format_types(rows: list[Formation]) -> list[str]:
    """The size and quantity of each process type, then how many dynos of each size."""
    ordered = sorted(rows, key=_type)
    totals: dict[str, int] = {}
    for f in ordered:
        totals[f["size"]] = totals.get(f["size"], 0) + f["quantity"]
    types = _table(
        [["Type", "Size", "Qty"], *([f["type"], f["size"], str(f["quantity"])] for f in ordered)]
    )
    sizes = _table([["Type", "Total"], *([size, str(n)] for size, n in totals.items())])
    return [header("Process Types"), "", *types, "", header("Dyno Totals"), "", *sizes]


@click.command("ps:type")
@app_option
@click.argument("sizes", nargs=-1, metavar="[SIZE | TYPE=SIZE...]")
@pass_env
def resize(env: CliEnv, app: str | None, sizes: tuple[str, ...]) -> None:
    """Show or change dyno sizes: `web=standard-2x` for one process type, or one SIZE for
    all of them. New dynos of the new size replace the running ones.

    SIZE is one of eco, basic, standard-1x, standard-2x, performance-m, performance-l.
    """
    name = env.resolve_app(app)
    client = env.client()
    current = client.formation(name)
    if not current:
        if sizes:
            raise CliError(f"No process types on {hexagon(name)}: git push a Procfile first.")
        _no_process_types(name)
        return
    if sizes:
        updates = size_updates(sizes, current)
        with action(f"Scaling dynos on {hexagon(name)}"):
            client.scale(name, updates)
        current = client.formation(name)
    for line in format_types(current):
        click.echo(line)


_DYNO_NAME = re.compile(r"^[\w-]+\.\d+$")


def _target(
    target: str | None, process_type: str | None, dyno_name: str | None
) -> tuple[str | None, str | None]:
    """(process type, dyno name) from the flags and a positional `web` or `web.1`."""
    if target and _DYNO_NAME.match(target):
        dyno_name = dyno_name or target
    elif target:
        process_type = process_type or target
    return process_type, dyno_name


def _which(process_type: str | None, dyno_name: str | None) -> str:
    """`dyno web.1`, `web dynos` or `dynos`: what a restart or stop is about."""
    if dyno_name:
        return f"dyno {dyno_name}"
    return f"{process_type} dynos" if process_type else "dynos"


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
    process_type, dyno_name = _target(target, process_type, dyno_name)
    with action(f"Restarting {_which(process_type, dyno_name)} on {hexagon(name)}"):
        env.client().restart(name, dyno=dyno_name, process_type=process_type)


@click.command("ps:stop")
@app_option
@click.argument("target", required=False, metavar="[TYPE | DYNO]")
@click.option("-p", "--process-type", help="Stop the dynos of one process type (run: one-offs).")
@click.option("-d", "--dyno-name", help="Stop one dyno, e.g. web.1 or run.1234.")
@pass_env
def stop(
    env: CliEnv,
    app: str | None,
    target: str | None,
    process_type: str | None,
    dyno_name: str | None,
) -> None:
    """Stop one dyno (`web.1`, `run.1234`) or the dynos of a process type (`web`, `run`).

    As on Heroku, a stopped formation dyno is started again (like ps:restart; scale to 0 to
    keep it stopped); a one-off dyno ends.
    """
    name = env.resolve_app(app)
    process_type, dyno_name = _target(target, process_type, dyno_name)
    if not dyno_name and not process_type:
        raise CliError("Please specify a process type or dyno name to stop.")
    with action(f"Stopping {_which(process_type, dyno_name)} on {hexagon(name)}"):
        env.client().stop(name, dyno=dyno_name, process_type=process_type)


COMMANDS: list[click.Command] = [ps, scale, resize, restart, stop]
ALIASES = {
    "scale": "ps:scale",
    "restart": "ps:restart",
    "ps:resize": "ps:type",
    "stop": "ps:stop",
    "ps:kill": "ps:stop",
}
