"""`kapal builds`, `builds:info`, `builds:output`, `builds:cache:purge`."""

from __future__ import annotations

import json
from datetime import tzinfo

import click

from kapal.cli.confirm import confirm_app
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, columns, echo_header, format_time, hexagon, key_values
from kapal.client import KapalClient
from kapal.client.types import Build


def released(build: Build) -> str:
    release = build.get("release")
    return f"v{release['version']}" if release else ""


def commit(build: Build) -> str:
    return (build["source_blob"].get("version") or "")[:8]


def format_builds(builds: list[Build], tz: tzinfo | None = None) -> list[str]:
    """`<id>  succeeded  v3  1a2b3c4d  user@example.com  2026/11/26 13:39:22 +0000`, newest
    first."""
    ordered = sorted(builds, key=lambda b: b["created_at"], reverse=True)
    return columns(
        [
            [
                b["id"],
                b["status"],
                released(b),
                commit(b),
                b["user"]["email"],
                format_time(b["created_at"], tz),
            ]
            for b in ordered
        ]
    )


def find_build(client: KapalClient, app: str, build_id: str | None) -> Build:
    """The build with this id, or the newest one."""
    if build_id:
        return client.build(app, build_id)
    builds = client.builds(app)
    if not builds:
        raise CliError(f"{hexagon(app)} has no builds yet: `git push kapal main` makes one.")
    return max(builds, key=lambda b: b["created_at"])


@click.command("builds")
@app_option
@click.option("-n", "--num", default=15, show_default=True, help="How many builds to show.")
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@pass_env
def list_builds(env: CliEnv, app: str | None, num: int, as_json: bool) -> None:
    """List the app's builds, newest first."""
    if num < 1:
        raise CliError("--num must be at least 1.")
    name = env.resolve_app(app)
    builds = sorted(env.client().builds(name), key=lambda b: b["created_at"])[-num:]
    if as_json:
        click.echo(json.dumps(builds, indent=2))
        return
    if not builds:
        click.echo(f"{hexagon(name)} has no builds.")
        return
    echo_header(f"{hexagon(name)} Builds")
    for line in format_builds(builds, env.tz):
        click.echo(line)


@click.command("builds:info")
@app_option
@click.argument("build_id", metavar="[BUILD]", required=False)
@click.option("-j", "--json", "as_json", is_flag=True, help="Print JSON.")
@pass_env
def info(env: CliEnv, app: str | None, build_id: str | None, as_json: bool) -> None:
    """Show one build (default: the newest)."""
    name = env.resolve_app(app)
    build = find_build(env.client(), name, build_id)
    if as_json:
        click.echo(json.dumps(build, indent=2))
        return
    buildpacks = ", ".join(b["url"] for b in build.get("buildpacks") or []) or "detected"
    echo_header(f"Build {build['id']}")
    rows = [
        ("Status", build["status"]),
        ("By", build["user"]["email"]),
        ("Created", format_time(build["created_at"], env.tz)),
        ("Commit", build["source_blob"].get("version") or ""),
        ("Buildpacks", buildpacks),
        ("Release", released(build)),
    ]
    for line in key_values(rows):
        click.echo(line)


@click.command("builds:output")
@app_option
@click.argument("build_id", metavar="[BUILD]", required=False)
@pass_env
def output(env: CliEnv, app: str | None, build_id: str | None) -> None:
    """Print a build's whole output (default: the newest), following it while it runs."""
    name = env.resolve_app(app)
    client = env.client()
    build = find_build(client, name, build_id)
    for line in client.stream_log(build["output_stream_url"]):
        click.echo(line)


@click.command("builds:cache:purge")
@app_option
@click.option("--confirm", metavar="APP", help="The app's name, to purge without a prompt.")
@pass_env
def purge_cache(env: CliEnv, app: str | None, confirm: str | None) -> None:
    """Delete the app's build cache: the next build downloads everything again."""
    name = env.resolve_app(app)
    confirm_app(
        env, name, confirm, would=f"delete the build cache of {hexagon(name)}", aborted="Aborted."
    )
    with action(f"Purging the build cache of {hexagon(name)}"):
        env.client().purge_build_cache(name)


COMMANDS = [list_builds, info, output, purge_cache]
