"""`kapal domains`, `domains:add`, `domains:remove`: the hostnames the router serves an app at."""

from __future__ import annotations

import click

from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.output import action, columns, hexagon
from kapal.client import domains as api
from kapal.domain.hostnames import is_apex


def record_type(hostname: str) -> str:
    """The DNS record that points a hostname at its target (no CNAME at a bare domain)."""
    return "ALIAS or ANAME" if is_apex(hostname) else "CNAME"


def domain_lines(app: str, domains: list[api.Domain]) -> list[str]:
    """The app's own hostname, then a table of its custom domains."""
    own = [d["hostname"] for d in domains if d["kind"] == "heroku"]
    custom = [d for d in domains if d["kind"] != "heroku"]
    lines = [f"=== {hexagon(app)} Kapal Domain", "", *own]
    if custom:
        rows = [["Domain Name", "DNS Record Type", "DNS Target", "SNI Endpoint"]]
        rows += [
            [
                d["hostname"],
                record_type(d["hostname"]),
                d["cname"] or "",
                d["sni_endpoint"]["name"] if d["sni_endpoint"] else "",
            ]
            for d in custom
        ]
        table = columns(rows)
        lines += ["", f"=== {hexagon(app)} Custom Domains", "", table[0]]
        lines += ["-" * len(table[0]), *table[1:]]
    return lines


@click.command("domains")
@app_option
@pass_env
def show(env: CliEnv, app: str | None) -> None:
    """List the hostnames the app is served at."""
    name = env.resolve_app(app)
    for line in domain_lines(name, api.domains(env.client(), name)):
        click.echo(line)


@click.command("domains:add")
@app_option
@click.option("--cert", metavar="NAME", help="The SNI endpoint whose certificate HTTPS uses.")
@click.argument("hostname")
@pass_env
def add(env: CliEnv, app: str | None, cert: str | None, hostname: str) -> None:
    """Serve the app at HOSTNAME (such as www.example.com or *.example.com) too."""
    name = env.resolve_app(app)
    with action(f"Adding {hostname} to {hexagon(name)}"):
        domain = api.add_domain(env.client(), name, hostname, cert)
    target = domain["cname"] or ""
    if target == "localhost" or target.endswith(".localhost"):
        # Apps on localhost: no DNS record can point there; this machine's hosts file can.
        click.echo(
            f"Kapal serves {domain['hostname']} from now on. To reach it on this machine, add "
            f"`127.0.0.1 {domain['hostname']}` to /etc/hosts."
        )
    else:
        click.echo(
            f"Point {domain['hostname']} at {target} with your DNS provider "
            f"({record_type(domain['hostname'])} record); Kapal serves it from now on."
        )
    https_line(domain)


def https_line(domain: api.Domain) -> None:
    endpoint = domain["sni_endpoint"]
    if endpoint:
        click.echo(f"HTTPS uses the certificate of SNI endpoint {endpoint['name']}.")
    else:
        click.echo("No certificate of the app covers it yet: add one with kapal certs:add.")


@click.command("domains:update")
@app_option
@click.option(
    "--cert", metavar="NAME", help="The SNI endpoint to use (default: any that covers it)."
)
@click.argument("hostname")
@pass_env
def update(env: CliEnv, app: str | None, cert: str | None, hostname: str) -> None:
    """Choose the certificate HTTPS uses for HOSTNAME."""
    name = env.resolve_app(app)
    with action(f"Updating {hostname} on {hexagon(name)}"):
        domain = api.update_domain(env.client(), name, hostname, cert)
    https_line(domain)


@click.command("domains:remove")
@app_option
@click.argument("hostname")
@pass_env
def remove(env: CliEnv, app: str | None, hostname: str) -> None:
    """Stop serving the app at HOSTNAME."""
    name = env.resolve_app(app)
    with action(f"Removing {hostname} from {hexagon(name)}"):
        api.remove_domain(env.client(), name, hostname)


COMMANDS: list[click.Command] = [show, add, update, remove]
