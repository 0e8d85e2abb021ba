"""`kapal run` (attached one-off dyno) and `kapal run:detached`."""

from __future__ import annotations

import contextlib
import shlex
import sys

import click

from kapal.cli import terminal
from kapal.cli.attach import Interrupts, Upstream, pump, skip_greeting
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, hexagon
from kapal.client import rendezvous
from kapal.domain.rendezvous import resize_sequence

# Everything after the first argument belongs to the command: `kapal run ls -a` runs `ls -a`.
_COMMAND_SETTINGS = {"allow_interspersed_args": False, "ignore_unknown_options": True}


def build_command(args: tuple[str, ...]) -> str:
    """One argument is a shell line as typed (`kapal run "rake test"`); several are quoted."""
    return args[0] if len(args) == 1 else shlex.join(args)


def parse_env(values: tuple[str, ...]) -> dict[str, str]:
    """Heroku's `--env "KEY=value;KEY2=value2"`, also given several times."""
    env: dict[str, str] = {}
    for value in values:
        for item in value.split(";"):
            if not item.strip():
                continue
            key, equals, text = item.partition("=")
            if not equals or not key.strip():
                raise click.BadParameter(
                    f"expected KEY=value, got {item.strip()!r} (a ';' separates variables)",
                    param_hint="'--env'",
                )
            env[key.strip()] = text.lstrip()
    return env


_size = click.option("-s", "--size", help="Dyno size (eco, basic, standard-1x, ...).")
_command = click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)


@click.command("run", context_settings=_COMMAND_SETTINGS)
@app_option
@_size
@click.option(
    "-e", "--env", "env_vars", multiple=True, help='Environment variables: "KEY=value;KEY2=value2".'
)
@click.option("--no-tty", is_flag=True, help="Run without a terminal, even from one.")
@click.option(
    "-x", "--exit-code", is_flag=True, help="Exit with the dyno's exit status (always done)."
)
@_command
@pass_env
def run(
    env: CliEnv,
    app: str | None,
    size: str | None,
    env_vars: tuple[str, ...],
    no_tty: bool,
    exit_code: bool,
    command: tuple[str, ...],
) -> None:
    """Run a command in a one-off dyno, attached to this terminal; exits with its status.

    From a terminal the dyno gets one too (`kapal run bash`): every key goes to it, Ctrl-C
    included; press Ctrl-C four times within a second to leave a dyno that does not answer.
    Put `--` before a command that has options of its own: kapal run -a APP -- ls -a
    """
    name = env.resolve_app(app)
    line = build_command(command)
    dyno_env = parse_env(env_vars)
    tty = env.stdin_tty and not no_tty
    if tty:  # what Heroku's CLI sends: the dyno's terminal starts at this one's size
        rows, columns = terminal.size(sys.stdin.fileno())
        term = env.environ.get("TERM") or "xterm"
        dyno_env = {"TERM": term, "COLUMNS": str(columns), "LINES": str(rows), **dyno_env}
    with action(f"Running {line} on {hexagon(name)}") as status:
        dyno = env.client().create_dyno(name, line, attach=True, size=size, env=dyno_env, tty=tty)
        attach_url = dyno.get("attach_url")
        if not attach_url:
            raise CliError(f"The API returned no attach URL for {dyno['name']}.")
        try:
            target = rendezvous.parse_attach_url(attach_url)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        sock = rendezvous.connect(target)
        first = skip_greeting(sock)
        if first is None:
            sock.close()
            raise CliError(f"{dyno['name']} closed the connection before it started.")
        status.done(f"up, {dyno['name']} ({dyno['size']})")
    with sock:
        sys.stdout.flush()
        upstream = Upstream(sock)
        with _raw_terminal(upstream) if tty else contextlib.nullcontext():
            exit_status = pump(
                sock,
                first,
                sys.stdin.buffer,
                sys.stdout.buffer,
                upstream,
                Interrupts() if tty else None,
            )
    if upstream.hung_up:
        raise CliError(f"Left {dyno['name']} (Ctrl-C four times); it was sent SIGHUP.")
    if exit_status is None:
        raise CliError(f"{dyno['name']} ended without reporting an exit status.")
    click.get_current_context().exit(exit_status)


def _raw_terminal(upstream: Upstream) -> contextlib.AbstractContextManager[None]:
    """This terminal raw for the session, its size sent in-band whenever it changes."""
    return terminal.raw(sys.stdin.fileno(), lambda size: upstream.send(resize_sequence(size)))


@click.command("run:detached", context_settings=_COMMAND_SETTINGS)
@app_option
@_size
@_command
@pass_env
def run_detached(env: CliEnv, app: str | None, size: str | None, command: tuple[str, ...]) -> None:
    """Run a command in a one-off dyno in the background; its output goes to the app's logs."""
    name = env.resolve_app(app)
    line = build_command(command)
    with action(f"Running {line} on {hexagon(name)}") as status:
        dyno = env.client().create_dyno(name, line, attach=False, size=size)
        status.done(f"done, {dyno['name']} ({dyno['size']})")
    click.echo(f"Run kapal logs --app {name} --dyno {dyno['name']} to view the output.")


COMMANDS: list[click.Command] = [run, run_detached]
