"""`kapal buildpacks`, `buildpacks:add`, `:set`, `:remove`, `:clear`: the buildpacks an app's
builds run, in order. Each command reads the list, changes it here and puts it back whole,
as the API takes it."""

from __future__ import annotations

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import echo_header, hexagon

index_option = click.option(
    "-i", "--index", type=click.IntRange(min=1), help="Position in the list, from 1."
)


def numbered(urls: list[str], indent: str = "") -> list[str]:
    return [f"{indent}{number}. {url}" for number, url in enumerate(urls, start=1)]


def next_release(verb: str, app: str, urls: list[str]) -> list[str]:
    """What a change means for the app's next build."""
    if not urls:
        return [f"Buildpacks {verb}. The next release of {hexagon(app)} will detect its buildpack."]
    if len(urls) == 1:
        lines = [f"Buildpack {verb}. The next release of {hexagon(app)} will use {urls[0]}."]
    else:
        lines = [f"Buildpack {verb}. The next release of {hexagon(app)} will use:"]
        lines += numbered(urls, "  ")
    return [*lines, "Run `git push kapal main` to create a new release with them."]


def added(urls: list[str], url: str, index: int | None) -> list[str]:
    if url in urls:
        raise CliError(f"The buildpack {url} is already set on the app.")
    position = len(urls) if index is None else min(index, len(urls) + 1) - 1
    return [*urls[:position], url, *urls[position:]]


def replaced(urls: list[str], url: str, index: int | None) -> list[str]:
    if index is None and len(urls) > 1:
        raise CliError("The app has several buildpacks: say which one to replace with --index.")
    position = (index or 1) - 1
    if url in urls and urls.index(url) != position:
        raise CliError(f"The buildpack {url} is already set on the app.")
    if position >= len(urls):
        return [*urls, url]
    return [*urls[:position], url, *urls[position + 1 :]]


def removed(urls: list[str], url: str | None, index: int | None) -> list[str]:
    if (url is None) == (index is None):
        raise CliError("Give either a buildpack URL or --index to remove.")
    if index is not None:
        if index > len(urls):
            raise CliError(f"The app has no buildpack at index {index}.")
        position = index - 1
    elif url in urls:
        position = urls.index(url)
    else:
        raise CliError(f"The buildpack {url} is not set on the app.")
    return [*urls[:position], *urls[position + 1 :]]


def save(env: CliEnv, app: str, verb: str, urls: list[str]) -> None:
    for line in next_release(verb, app, env.client().set_buildpacks(app, urls)):
        click.echo(line)


@click.command("buildpacks")
@app_option
@pass_env
def show(env: CliEnv, app: str | None) -> None:
    """List the app's buildpacks, in the order its builds run them."""
    name = env.resolve_app(app)
    urls = env.client().buildpacks(name)
    if not urls:
        click.echo(f"{hexagon(name)} has no buildpacks set: its builds detect one.")
        return
    echo_header(f"{hexagon(name)} Buildpack URL{'s' if len(urls) > 1 else ''}")
    for line in numbered(urls) if len(urls) > 1 else urls:
        click.echo(line)


@click.command("buildpacks:add")
@app_option
@index_option
@click.argument("url")
@pass_env
def add(env: CliEnv, app: str | None, index: int | None, url: str) -> None:
    """Add a buildpack: heroku/python, a git URL (#branch), or a directory on the server."""
    name = env.resolve_app(app)
    save(env, name, "added", added(env.client().buildpacks(name), url, index))


@click.command("buildpacks:set")
@app_option
@index_option
@click.argument("url")
@pass_env
def set_(env: CliEnv, app: str | None, index: int | None, url: str) -> None:
    """Set the buildpack (at --index, when the app has several)."""
    name = env.resolve_app(app)
    save(env, name, "set", replaced(env.client().buildpacks(name), url, index))


@click.command("buildpacks:remove")
@app_option
@index_option
@click.argument("url", required=False)
@pass_env
def remove(env: CliEnv, app: str | None, index: int | None, url: str | None) -> None:
    """Remove a buildpack, by URL or --index."""
    name = env.resolve_app(app)
    save(env, name, "removed", removed(env.client().buildpacks(name), url, index))


@click.command("buildpacks:clear")
@app_option
@pass_env
def clear(env: CliEnv, app: str | None) -> None:
    """Remove every buildpack: builds detect the app's language again."""
    name = env.resolve_app(app)
    save(env, name, "cleared", [])


COMMANDS = [show, add, set_, remove, clear]
