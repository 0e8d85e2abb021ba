"""`kapal logs`: open a log session and print its stream until it ends (or Ctrl-C)."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime, timedelta

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError

SOURCES = ("app", "kapal")
_LINE = re.compile(r"^(?P<stamp>\S+) (?P<source>[\w-]+)\[(?P<dyno>[^\]]*)\]:(?P<rest>.*)$")
_TYPE_COLORS = {"api": "green", "web": "cyan", "worker": "yellow", "run": "magenta"}
_PALETTE = ("blue", "bright_cyan", "bright_green", "bright_yellow", "bright_blue", "red")
_AGO = re.compile(r"^(\d{1,6})\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def since_time(text: str, now: datetime | None = None) -> str:
    """`--since 2h` (s, m, h, d or w ago) or an ISO 8601 time, as an ISO time in UTC."""
    value = text.strip()
    ago = _AGO.match(value.lower())
    if ago is not None:
        moment = (now or datetime.now(UTC)) - timedelta(seconds=int(ago[1]) * _UNITS[ago[2]])
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CliError(
                f"--since takes a time ago such as 30m, 2h or 7d, or a time such as "
                f"2026-11-27T10:00:00Z, not {text!r}."
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


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
@click.option("--grep", metavar="TEXT", help="Only lines that contain TEXT (any case).")
@click.option("--since", metavar="WHEN", help="Only lines since WHEN: 30m, 2h, 7d or a time.")
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
    grep: str | None,
    since: str | None,
    no_color: bool,
) -> None:
    """Show the app's recent log lines, and with --tail follow new ones.

    Kapal keeps every app's lines on disk (KAPAL_LOG_RETENTION_DAYS), so --grep and
    --since search further back than the last 1500 lines."""
    if num < 0:
        raise CliError("--num cannot be negative.")
    name = env.resolve_app(app)
    client = env.client()
    session = client.create_log_session(
        name,
        lines=num,
        tail=tail,
        dyno=dyno or process_type,
        source=source,
        grep=grep,
        since=since_time(since) if since else None,
    )
    color = env.stdout_tty and not no_color
    try:
        for line in client.stream_log(session["logplex_url"]):
            click.echo(colorize(line) if color else line, color=color)
    except KeyboardInterrupt:
        return  # Ctrl-C is how a tail ends


COMMANDS: list[click.Command] = [logs]
