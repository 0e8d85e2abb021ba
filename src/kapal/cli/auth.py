"""`kapal signup`, `login`, `logout`, `whoami`, `auth:token`: the API token in ~/.netrc."""

from __future__ import annotations

import socket
import sys

import click

from kapal.cli import netrc
from kapal.cli.context import NOT_LOGGED_IN, CliEnv, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import WARNING, action
from kapal.client import KapalApiError
from kapal.client.types import Authorization


def read_credentials(env: CliEnv, email: str | None, *, confirm: bool = False) -> tuple[str, str]:
    """Prompts on a terminal, or one line each from piped stdin. The password is never an
    option: arguments show in `ps` and in shell history."""
    if env.stdin_tty:
        if email is None:
            email = str(click.prompt("Email"))
        password = str(click.prompt("Password", hide_input=True, confirmation_prompt=confirm))
    else:
        stdin = sys.stdin
        if email is None:
            email = stdin.readline().strip()
        password = stdin.readline().rstrip("\r\n")
    email = email.strip()
    if not email or not password:
        raise CliError("An email and a password are required.")
    return email, password


def _save(env: CliEnv, auth: Authorization) -> str:
    email = auth["user"]["email"]
    netrc.write_entry(env.netrc_path, env.api_host, email, auth["access_token"]["token"])
    if env.environ.get("KAPAL_API_KEY"):
        click.echo(f"{WARNING}KAPAL_API_KEY is set: it is used instead of this login.", err=True)
    return email


_email = click.option(
    "--email",
    help="Account email (prompted for when missing). The password is prompted for, "
    "or read from the next line of piped stdin.",
)


@click.command("signup")
@_email
@pass_env
def signup(env: CliEnv, email: str | None) -> None:
    """Create an account on this Kapal and log in to it."""
    email, password = read_credentials(env, email, confirm=True)
    auth = env.client(authenticated=False).signup(email, password)
    click.echo(f"Account created. Logged in as {_save(env, auth)}")


@click.command("login")
@_email
@pass_env
def login(env: CliEnv, email: str | None) -> None:
    """Log in with your email and password; saves an API token in ~/.netrc (git uses it too)."""
    email, password = read_credentials(env, email)
    client = env.client(authenticated=False)
    try:
        auth = client.login(email, password, f"Kapal CLI login from {socket.gethostname()}")
    except KapalApiError as exc:
        if exc.status == 401:
            raise CliError(exc.message or "Invalid email or password.") from exc
        raise
    click.echo(f"Logged in as {_save(env, auth)}")


@click.command("logout")
@pass_env
def logout(env: CliEnv) -> None:
    """Revoke the saved API token and remove it from ~/.netrc."""
    entry = netrc.read_entry(env.netrc_path, env.api_host)
    if entry is None or entry.password is None:
        click.echo("Not logged in.")
        return
    with action("Logging out"):
        client = env.client(authenticated=False)
        client.token = entry.password
        try:
            client.revoke_token()
        except KapalApiError as exc:
            if exc.status != 401:  # 401: the token is already invalid, nothing to revoke
                raise
        netrc.remove_entry(env.netrc_path, env.api_host)


@click.command("whoami")
@pass_env
def whoami(env: CliEnv) -> None:
    """Print the email you are logged in as."""
    click.echo(env.client().account()["email"])


@click.command("auth:token")
@pass_env
def token(env: CliEnv) -> None:
    """Print the API token in use (KAPAL_API_KEY, else the one saved by kapal login)."""
    value = env.token()
    if value is None:
        raise CliError(NOT_LOGGED_IN)
    click.echo(value)


COMMANDS: list[click.Command] = [signup, login, logout, whoami, token]
ALIASES = {"auth:login": "login", "auth:logout": "logout", "auth:whoami": "whoami"}
