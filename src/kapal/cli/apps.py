"""`kapal apps`, `apps:create`, `apps:info`, `apps:destroy`, `apps:open`, `git:remote`."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import tzinfo

import click

from kapal.cli import gitremote
from kapal.cli.confirm import confirm_app
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import WARNING, action, echo_header, format_time, hexagon, key_values
from kapal.client import KapalApiError
from kapal.client.types import Addon, App, Dyno


@click.command("apps")
@pass_env
def list_apps(env: CliEnv) -> None:
    """List your apps."""
    client = env.client()
    email = client.account()["email"]
    apps = sorted(client.list_apps(), key=lambda app: app["name"])
    if not apps:
        click.echo("You have no apps.")
        return
    echo_header(f"{email} Apps")
    for app in apps:
        click.echo(app["name"])


@click.command("apps:create")
@click.argument("name", required=False)
@click.option(
    "-r", "--remote", default=gitremote.DEFAULT_REMOTE, show_default=True, help="Git remote name."
)
@click.option("-n", "--no-remote", is_flag=True, help="Do not add a git remote.")
@pass_env
def create(env: CliEnv, name: str | None, remote: str, no_remote: bool) -> None:
    """Create an app (with a random name unless NAME is given) and add its git remote."""
    with action("Creating app") as status:
        app = env.client().create_app(name)
        status.done(f"done, {hexagon(app['name'])}")
    click.echo(f"{app['web_url']} | {app['git_url']}")
    if no_remote or not gitremote.in_work_tree(env.cwd, env.environ):
        return
    existing = gitremote.remotes(env.cwd, env.environ).get(remote)
    if existing is None:
        gitremote.add_remote(env.cwd, env.environ, remote, app["git_url"])
        click.echo(f"Git remote {remote} added", err=True)
    elif existing != app["git_url"]:
        click.echo(
            f"{WARNING}Git remote {remote} already points to {existing}; left unchanged.\n"
            f"{WARNING}Use kapal git:remote -a {app['name']} to point it at this app.",
            err=True,
        )


def info_rows(
    app: App, dynos: list[Dyno], addons: list[Addon], tz: tzinfo | None = None
) -> list[str]:
    """The `Key: value` block of apps:info."""
    counts = Counter(dyno["type"] for dyno in dynos)
    released = app.get("released_at")
    rows = [
        ("Addons", ", ".join(a.get("plan", {}).get("name", a["name"]) for a in addons)),
        ("Dynos", " ".join(f"{kind}: {n}" for kind, n in sorted(counts.items()))),
        ("Git URL", app["git_url"]),
        ("Owner", app["owner"]["email"]),
        ("Region", app.get("region", {}).get("name", "")),
        ("Released At", format_time(released, tz) if released else ""),
        ("Stack", app.get("stack", {}).get("name", "")),
        ("Web URL", app["web_url"]),
    ]
    if app.get("maintenance"):
        rows.append(("Maintenance", "on"))
    return key_values([(k, v) for k, v in rows if v])


@click.command("apps:info")
@app_option
@click.argument("app_arg", metavar="[APP]", required=False)
@pass_env
def info(env: CliEnv, app: str | None, app_arg: str | None) -> None:
    """Show an app's URLs, owner, dynos and add-ons."""
    name = env.resolve_app(app or app_arg)
    client = env.client()
    details = client.get_app(name)
    dynos = client.dynos(name)
    try:
        addons = client.addons(name)
    except KapalApiError as exc:
        if exc.status != 404:
            raise
        addons = []  # a Kapal without add-on support
    echo_header(details["name"])
    for line in info_rows(details, dynos, addons, env.tz):
        click.echo(line)


@click.command("apps:destroy")
@app_option
@click.argument("app_arg", metavar="[APP]", required=False)
@click.option("--confirm", metavar="APP", help="The app's name, to destroy it without a prompt.")
@pass_env
def destroy(env: CliEnv, app: str | None, app_arg: str | None, confirm: str | None) -> None:
    """Permanently destroy an app, its add-ons and its git remote."""
    name = env.resolve_app(app or app_arg)
    would = f"permanently destroy {hexagon(name)} and all its add-ons"
    confirm_app(env, name, confirm, would=would, aborted="Nothing destroyed.")
    client = env.client()
    git_url = client.get_app(name)["git_url"]
    with action(f"Destroying {hexagon(name)} (including all add-ons)"):
        client.destroy_app(name)
    for remote in gitremote.remove_remotes(env.cwd, env.environ, git_url):
        click.echo(f"Git remote {remote} removed", err=True)


def display_available(env: CliEnv) -> bool:
    """Is a browser likely to open somewhere the user can see it?"""
    graphical = bool(env.environ.get("DISPLAY") or env.environ.get("WAYLAND_DISPLAY"))
    return env.stdout_tty and (graphical or sys.platform == "darwin")


@click.command("apps:open")
@app_option
@click.argument("path", required=False, default="")
@click.option("--print", "print_only", is_flag=True, help="Print the URL, do not open a browser.")
@pass_env
def open_app(env: CliEnv, app: str | None, path: str, print_only: bool) -> None:
    """Open the app (optionally at PATH) in a web browser."""
    name = env.resolve_app(app)
    url = env.client().get_app(name)["web_url"]
    if path:
        url = url.rstrip("/") + "/" + path.lstrip("/")
    click.echo(f"Opening {url}...")
    if not print_only and display_available(env):
        env.open_browser(url)


@click.command("git:remote")
@app_option
@click.option(
    "-r", "--remote", default=gitremote.DEFAULT_REMOTE, show_default=True, help="Git remote name."
)
@pass_env
def git_remote(env: CliEnv, app: str | None, remote: str) -> None:
    """Add (or repoint) a git remote for an app in this repository."""
    name = env.resolve_app(app)
    if not gitremote.in_work_tree(env.cwd, env.environ):
        raise CliError("Not in a git repository. Run git init first.")
    url = env.client().get_app(name)["git_url"]
    gitremote.set_remote(env.cwd, env.environ, remote, url)
    click.echo(f"set git remote {remote} to {url}")


COMMANDS: list[click.Command] = [list_apps, create, info, destroy, open_app, git_remote]
ALIASES = {
    "create": "apps:create",
    "info": "apps:info",
    "destroy": "apps:destroy",
    "open": "apps:open",
    "apps:list": "apps",
}
