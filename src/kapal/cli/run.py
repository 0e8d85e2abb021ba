"""`kapal run` (attached one-off dyno) and `kapal run:detached`."""

from __future__ import annotations

import shlex
import sys

import click

from kapal.cli.attach import pump, skip_greeting
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, hexagon
from kapal.client import rendezvous
from kapal.client.rendezvous import with_exit_status

# Everything after the first argument belongs to the command: `kapal run ls -a` runs `ls -a`.
_COMMAND_SETTINGS = {"allow_interspersed_args": False, "ignore_unknown_options": True}


def build_command(args: tuple[str, ...]) -> str:
    """One argument is a shell line as typed (`kapal run "rake test"`); several are quoted."""
    return args[0] if len(args) == 1 else shlex.join(args)


_size = click.option("-s", "--size", help="Dyno size (eco, basic, standard-1x, ...).")
_command = click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)


@click.command("run", context_settings=_COMMAND_SETTINGS)
@app_option
@_size
@_command
@pass_env
def run(env: CliEnv, app: str | None, size: str | None, command: tuple[str, ...]) -> None:
    """Run a command in a one-off dyno, attached to this terminal; exits with its status.

    Put `--` before a command that has options of its own: kapal run -a APP -- ls -a
    """
    name = env.resolve_app(app)
    line = build_command(command)
    with action(f"Running {line} on {hexagon(name)}") as status:
        dyno = env.client().create_dyno(name, with_exit_status(line), attach=True, size=size)
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
        exit_status = pump(sock, first, sys.stdin.buffer, sys.stdout.buffer)
    if exit_status is None:
        raise CliError(f"{dyno['name']} ended without reporting an exit status.")
    click.get_current_context().exit(exit_status)


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
