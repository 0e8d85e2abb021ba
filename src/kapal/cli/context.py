"""What one `kapal` invocation runs with (environment, working directory, terminals, HTTP
transport), and the helpers every command module uses: app resolution and the API client."""

from __future__ import annotations

import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import click
import httpx

from kapal.cli import gitremote, netrc
from kapal.cli.errors import PREFIX, CliError
from kapal.client import KapalClient

DEFAULT_API_URL = "http://localhost:5000"
NO_APP = "No app specified. Use -a APP."
NOT_LOGGED_IN = "Not logged in. Run kapal login (or kapal signup)."

F = TypeVar("F", bound=Callable[..., object])


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CliEnv:
    """Built once by the entry point from the real process; tests build their own."""

    environ: Mapping[str, str]
    cwd: Path
    transport: httpx.BaseTransport | None = None  # None: real network
    stdin_tty: bool = False
    stdout_tty: bool = False
    open_browser: Callable[[str], bool] = webbrowser.open
    now: Callable[[], datetime] = _utcnow
    tz: tzinfo | None = None  # None: the local time zone
    home: Path | None = None  # None: Path.home()

    # --- settings from the environment -----------------------------------------------------

    @property
    def api_url(self) -> str:
        return (self.environ.get("KAPAL_API_URL") or DEFAULT_API_URL).rstrip("/")

    @property
    def api_host(self) -> str:
        """The netrc machine name: the API's host without port, as curl and git look it up."""
        return urlsplit(self.api_url).hostname or "localhost"

    @property
    def netrc_path(self) -> Path:
        if self.environ.get("NETRC"):
            return Path(self.environ["NETRC"])
        return (self.home or Path.home()) / ".netrc"

    def token(self) -> str | None:
        """KAPAL_API_KEY, else the password of the API host's netrc entry."""
        if self.environ.get("KAPAL_API_KEY"):
            return self.environ["KAPAL_API_KEY"]
        entry = netrc.read_entry(self.netrc_path, self.api_host)
        return entry.password if entry else None

    # --- what commands call ----------------------------------------------------------------

    def client(self, *, authenticated: bool = True) -> KapalClient:
        """An API client, closed when the running command ends."""
        token = self.token() if authenticated else None
        if authenticated and token is None:
            raise CliError(NOT_LOGGED_IN)
        # Notices (Warning-Message) are printed when the command ends, not inside its
        # `Doing X... done` line.
        warnings: list[str] = []
        client = KapalClient(
            self.api_url, token, transport=self.transport, on_warning=warnings.append
        )
        context = click.get_current_context()
        context.call_on_close(client.close)
        context.call_on_close(lambda: _print_warnings(warnings))
        return client

    def resolve_app(self, app: str | None) -> str:
        """-a/--app, else KAPAL_APP, else the git remote `kapal`, then `heroku`."""
        if app:
            return app
        if self.environ.get("KAPAL_APP"):
            return self.environ["KAPAL_APP"]
        inferred = gitremote.app_from_remotes(self.cwd, self.environ)
        if inferred is None:
            raise CliError(NO_APP)
        return inferred


def _print_warnings(texts: list[str]) -> None:
    for text in texts:
        click.echo(f"{PREFIX}Warning: {text}", err=True)


pass_env = click.make_pass_decorator(CliEnv)
"""Decorator: pass the invocation's CliEnv as the first argument."""


def app_option(f: F) -> F:
    """Decorator: the `-a/--app APP` option (parameter `app`, None when not given)."""
    return click.option(
        "-a",
        "--app",
        "app",
        metavar="APP",
        help="App to run the command against (default: from the git remote kapal or heroku).",
    )(f)
