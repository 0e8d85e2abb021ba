"""The CLI's one error boundary: what the user sees on stderr, and the exit code."""

from __future__ import annotations

from typing import IO, Any

import click

from kapal.client import KapalApiError, KapalConnectionError

PREFIX = " ▸    "


class CliError(click.ClickException):
    """Print ` ▸    <message>` (every line prefixed) to stderr and exit with status 1."""

    def show(self, file: IO[Any] | None = None) -> None:
        lines = self.format_message().splitlines() or [""]
        for line in lines:
            click.echo(f"{PREFIX}{line}", file=file, err=file is None)


def from_api_error(exc: KapalApiError) -> CliError:
    if exc.status == 401:
        return CliError("Invalid credentials. Run kapal login.")
    return CliError(exc.message)


def from_connection_error(exc: KapalConnectionError, api_url: str) -> CliError:
    if exc.url.rstrip("/") == api_url.rstrip("/"):
        return CliError(
            f"Could not connect to the Kapal API at {api_url} ({exc.reason}).\n"
            "Is Kapal running? Start it with `make up`, or point KAPAL_API_URL at your Kapal."
        )
    return CliError(f"Could not connect to {exc.url} ({exc.reason}).")
