"""The `kapal` command group: Heroku-style `topic:command` names, aliases, one error boundary."""

from __future__ import annotations

from typing import Any

import click

from kapal.cli.errors import CliError, from_api_error, from_connection_error
from kapal.cli.gitremote import GitError
from kapal.client import KapalApiError, KapalConnectionError


class KapalGroup(click.Group):
    """A group whose commands may have aliases (`rollback` -> `releases:rollback`) and whose
    API and connection errors become ` ▸    message` on stderr with exit status 1."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases: dict[str, str] = {}

    def add_alias(self, alias: str, target: str) -> None:
        if target not in self.commands:
            raise ValueError(f"alias {alias!r} for unknown command {target!r}")
        self.aliases[alias] = target

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_commands(ctx, formatter)
        if self.aliases:
            rows = [(alias, f"Same as {target}.") for alias, target in sorted(self.aliases.items())]
            with formatter.section("Aliases"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KapalApiError as exc:
            raise from_api_error(exc) from exc
        except KapalConnectionError as exc:
            api_url = getattr(ctx.obj, "api_url", "")
            raise from_connection_error(exc, api_url) from exc
        except GitError as exc:
            raise CliError(f"git: {exc}") from exc
