"""`kapal releases`, `releases:info`, `releases:rollback` (alias `rollback`)."""

from __future__ import annotations

import json
from datetime import tzinfo

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import WARNING, action, columns, echo_header, format_time, hexagon, key_values
from kapal.client.types import Release

PHASE = {"pending": "release command executing", "failed": "release command failed"}


def describe(release: Release) -> str:
    """The description, plus how its release phase stands when it has not gone live."""
    phase = PHASE.get(release["status"])
    return f"{release['description']} {phase}" if phase else release["description"]


def _email(release: Release) -> str:
    user = release.get("user")
    return user["email"] if user else ""


def current_version(releases: list[Release]) -> int | None:
    return next((r["version"] for r in releases if r.get("current")), None)


def format_releases(releases: list[Release], tz: tzinfo | None = None) -> list[str]:
    """`v5  Set FOO config vars  user@example.com  2026/11/26 13:39:22 +0000`, newest first."""
    ordered = sorted(releases, key=lambda r: r["version"], reverse=True)
    return columns(
        [
            [f"v{r['version']}", describe(r), _email(r), format_time(r["created_at"], tz)]
            for r in ordered
        ]
    )


@click.command("releases")
@app_option
@click.option("-n", "--num", default=15, show_default=True, help="How many releases to show.")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@pass_env
def list_releases(env: CliEnv, app: str | None, num: int, as_json: bool) -> None:
    """List the app's releases, newest first."""
    if num < 1:
        raise CliError("--num must be at least 1.")
    name = env.resolve_app(app)
    releases = env.client().releases(name, max=num)
    if as_json:
        click.echo(json.dumps(releases, indent=2))
        return
    if not releases:
        click.echo(f"{hexagon(name)} has no releases.")
        return
    current = current_version(releases)
    echo_header(f"{name} Releases" + (f" - Current: v{current}" if current is not None else ""))
    for line in format_releases(releases, env.tz):
        click.echo(line)


def release_info_lines(release: Release, tz: tzinfo | None = None) -> list[str]:
    rows = [
        ("By", _email(release)),
        ("Change", describe(release)),
        ("Status", release["status"] + (" (current)" if release.get("current") else "")),
        ("When", format_time(release["created_at"], tz)),
    ]
    return key_values(rows)


@click.command("releases:info")
@app_option
@click.argument("version", required=False, metavar="[vN]")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@pass_env
def info(env: CliEnv, app: str | None, version: str | None, as_json: bool) -> None:
    """Show one release (default: the newest), with its release command output if any."""
    name = env.resolve_app(app)
    client = env.client()
    if version:
        release = client.release(name, version.removeprefix("v"))
    else:
        newest = client.releases(name, max=1)
        if not newest:
            raise CliError(f"{hexagon(name)} has no releases.")
        release = newest[0]
    if as_json:
        click.echo(json.dumps(release, indent=2))
        return
    echo_header(f"Release v{release['version']}")
    for line in release_info_lines(release, env.tz):
        click.echo(line)
    if release.get("output"):
        click.echo()
        echo_header("Release command output")
        click.echo(str(release["output"]).rstrip("\n"))


def rollback_target(releases: list[Release]) -> Release | None:
    """The newest live-able release before the current one (what a bare `rollback` picks)."""
    ordered = sorted(releases, key=lambda r: r["version"], reverse=True)
    current = current_version(ordered)
    for release in ordered:
        if current is not None and release["version"] >= current:
            continue
        eligible = release.get("eligible_for_rollback")
        if eligible is None:
            eligible = release["status"] == "succeeded" and bool(release.get("slug"))
        if eligible:
            return release
    return None


@click.command("releases:rollback")
@app_option
@click.argument("version", required=False, metavar="[vN]")
@pass_env
def rollback(env: CliEnv, app: str | None, version: str | None) -> None:
    """Roll back to an earlier release's code and config (default: the one before current)."""
    name = env.resolve_app(app)
    client = env.client()
    if version:
        target = client.release(name, version.removeprefix("v"))
    else:
        found = rollback_target(client.releases(name, max=20))
        if found is None:
            raise CliError(f"No earlier release of {hexagon(name)} to roll back to.")
        target = found
    with action(f"Rolling back {hexagon(name)} to v{target['version']}") as status:
        new = client.rollback(name, target["id"])
        status.done(f"done, v{new['version']}")
    click.echo(
        f"{WARNING}A rollback restores code and config vars; add-ons stay as they are.", err=True
    )
    click.echo(f"{WARNING}To undo it, run: kapal rollback v{new['version'] - 1}", err=True)


COMMANDS: list[click.Command] = [list_releases, info, rollback]
ALIASES = {"rollback": "releases:rollback"}
