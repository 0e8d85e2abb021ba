"""`kapal logs`: open a log session and print its stream until it ends (or Ctrl-C)."""

from __future__ import annotations

import re
import zlib

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError

SOURCES = ("app", "kapal")
_LINE = re.compile(r"^(?P<stamp>\S+) (?P<source>[\w-]+)\[(?P<dyno>[^\]]*)\]:(?P<rest>.*)$")
_TYPE_COLORS = {"api": "green", "web": "cyan", "worker": "yellow", "run": "magenta"}
_PALETTE = ("blue", "bright_cyan", "bright_green", "bright_yellow", "bright_blue", "red")


def _color_for(source: str, dyno: str) -> str:
    if source != "app":  # the platform speaking: router, dyno lifecycle
        return "bright_magenta"
    kind = dyno.split(".", 1)[0]
    return _TYPE_COLORS.get(kind) or _PALETTE[zlib.crc32(kind.encode()) % len(_PALETTE)]


def colorize(line: str) -> str:
    """Colour the `source[dyno]:` part of a log line by who wrote it; other lines unchanged."""
    match = _LINE.match(line)
    if match is None:
        return line
    prefix = click.style(
        f"{match['source']}[{match['dyno']}]:", fg=_color_for(match["source"], match["dyno"])
    )
    return f"{click.style(match['stamp'], dim=True)} {prefix}{match['rest']}"


@click.command("logs")
@app_option
@click.option(
    "-n", "--num", default=100, show_default=True, help="How many recent lines to show first."
)
@click.option("-t", "--tail", is_flag=True, help="Keep streaming new lines until Ctrl-C.")
@click.option("-d", "--dyno", help="Only lines of one dyno, e.g. web.1.")
@click.option("-p", "--process-type", help="Only lines of one process type, e.g. web.")
@click.option(
    "-s", "--source", type=click.Choice(SOURCES), help="Only lines from the app or from Kapal."
)
@click.option("--no-color", is_flag=True, help="Never colour the output.")
@pass_env
def logs(
    env: CliEnv,
    app: str | None,
    num: int,
    tail: bool,
    dyno: str | None,
    process_type: str | None,
    source: str | None,
    no_color: bool,
) -> None:
    """Show the app's recent log lines, and with --tail follow new ones."""
    if num < 0:
        raise CliError("--num cannot be negative.")
    name = env.resolve_app(app)
    client = env.client()
    session = client.create_log_session(
        name, lines=num, tail=tail, dyno=dyno or process_type, source=source
    )
    color = env.stdout_tty and not no_color
    try:
        for line in client.stream_log(session["logplex_url"]):
            click.echo(colorize(line) if color else line, color=color)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a tail ends


COMMANDS: list[click.Command] = [logs]
