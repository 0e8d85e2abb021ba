"""`kapal certs`, `certs:add`, `certs:update`, `certs:remove`: the TLS certificates (SNI
endpoints) the router serves for an app's custom domains. A key file is read and sent,
never printed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from kapal.cli.confirm import confirm_app
from kapal.cli.context import CliEnv, app_option, pass_env
from kapal.cli.errors import CliError
from kapal.cli.output import action, columns, format_time, hexagon, key_values, parse_time
from kapal.client import domains as api

MAX_FILE = 64 * 1024


def read_pem(path: str, what: str) -> str:
    try:
        data = Path(path).read_bytes()[: MAX_FILE + 1]
    except OSError as exc:
        raise CliError(f"Cannot read the {what} {path}: {exc.strerror}.") from None
    if len(data) > MAX_FILE:
        raise CliError(f"The {what} {path} is larger than {MAX_FILE // 1024} kB: not a PEM file.")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise CliError(f"The {what} {path} is not a PEM file (text).") from None


def trusted(endpoint: api.SniEndpoint) -> str:
    return "False" if endpoint["ssl_cert"].get("self_signed?") else "True"


def endpoint_rows(endpoints: list[api.SniEndpoint], now: datetime) -> list[str]:
    rows = [["Name", "Common Name(s)", "Expires", "Trusted", "Domains"]]
    for endpoint in endpoints:
        cert = endpoint["ssl_cert"]
        expires = parse_time(cert["expires_at"])
        rows.append(
            [
                endpoint["name"],
                ", ".join(cert["cert_domains"]),
                expires.strftime("%Y-%m-%d %H:%M %Z") + (" (expired)" if expires <= now else ""),
                trusted(endpoint),
                str(len(endpoint["domains"])),
            ]
        )
    table = columns(rows)
    return [table[0], "-" * len(table[0]), *table[1:]]


def details(endpoint: api.SniEndpoint, env: CliEnv) -> list[str]:
    cert = endpoint["ssl_cert"]
    return [
        "Certificate details:",
        *key_values(
            [
                ("Common Name(s)", ", ".join(cert["cert_domains"])),
                ("Expires At", format_time(cert["expires_at"], env.tz)),
                ("Issuer", cert["issuer"]),
                ("Starts At", format_time(cert["starts_at"], env.tz)),
                ("Subject", cert["subject"]),
            ]
        ),
        *(
            ["The certificate is self-signed: browsers will not trust it."]
            if cert.get("self_signed?")
            else []
        ),
    ]


def which(env: CliEnv, app: str, name: str | None) -> str:
    """The endpoint to act on: --name, or the app's only one."""
    if name:
        return name
    endpoints = api.sni_endpoints(env.client(), app)
    if not endpoints:
        raise CliError(f"{hexagon(app)} has no SSL certificates.")
    if len(endpoints) > 1:
        names = ", ".join(e["name"] for e in endpoints)
        raise CliError(
            f"{hexagon(app)} has several certificates ({names}): choose one with --name."
        )
    return endpoints[0]["name"]


@click.command("certs")
@app_option
@pass_env
def show(env: CliEnv, app: str | None) -> None:
    """List the app's SSL certificates."""
    name = env.resolve_app(app)
    endpoints = api.sni_endpoints(env.client(), name)
    if not endpoints:
        click.echo(f"{hexagon(name)} has no SSL certificates.")
        click.echo("Use kapal certs:add CERT_FILE KEY_FILE to add one.")
        return
    for line in endpoint_rows(endpoints, env.now()):
        click.echo(line)


@click.command("certs:add")
@app_option
@click.argument("cert_file", metavar="CERT_FILE")
@click.argument("key_file", metavar="KEY_FILE")
@pass_env
def add(env: CliEnv, app: str | None, cert_file: str, key_file: str) -> None:
    """Add a certificate (PEM: the certificate, then any intermediates) and its key; the
    app's custom domains it covers are served with it over HTTPS."""
    name = env.resolve_app(app)
    chain, key = read_pem(cert_file, "certificate file"), read_pem(key_file, "key file")
    with action(f"Adding SSL certificate to {hexagon(name)}") as status:
        endpoint = api.add_sni_endpoint(env.client(), name, chain, key)
        status.done(f"done, {endpoint['name']}")
    for line in details(endpoint, env):
        click.echo(line)
    _domains(env, name, endpoint)


@click.command("certs:update")
@app_option
@click.option("--name", metavar="NAME", help="The certificate to replace (when there are several).")
@click.argument("cert_file", metavar="CERT_FILE")
@click.argument("key_file", metavar="KEY_FILE")
@pass_env
def update(env: CliEnv, app: str | None, name: str | None, cert_file: str, key_file: str) -> None:
    """Replace a certificate and its key (a renewal)."""
    app_name = env.resolve_app(app)
    chain, key = read_pem(cert_file, "certificate file"), read_pem(key_file, "key file")
    endpoint_name = which(env, app_name, name)
    with action(f"Updating SSL certificate {endpoint_name} for {hexagon(app_name)}"):
        endpoint = api.update_sni_endpoint(env.client(), app_name, endpoint_name, chain, key)
    for line in details(endpoint, env):
        click.echo(line)
    _domains(env, app_name, endpoint)


@click.command("certs:remove")
@app_option
@click.option("--name", metavar="NAME", help="The certificate to remove (when there are several).")
@click.option("--confirm", metavar="APP", help="The app's name, to remove it without a prompt.")
@pass_env
def remove(env: CliEnv, app: str | None, name: str | None, confirm: str | None) -> None:
    """Remove a certificate; its domains are served with another that covers them, or with
    Kapal's own."""
    app_name = env.resolve_app(app)
    endpoint_name = which(env, app_name, name)
    would = f"remove the SSL certificate {endpoint_name} from {hexagon(app_name)}"
    confirm_app(env, app_name, confirm, would=would, aborted="Nothing removed.")
    with action(f"Removing SSL certificate {endpoint_name} from {hexagon(app_name)}"):
        api.remove_sni_endpoint(env.client(), app_name, endpoint_name)


def _domains(env: CliEnv, app: str, endpoint: api.SniEndpoint) -> None:
    """Which of the app's custom domains the certificate now serves."""
    ids = set(endpoint["domains"])
    hostnames = [d["hostname"] for d in api.domains(env.client(), app) if d["id"] in ids]
    if hostnames:
        click.echo(f"Serves {', '.join(hostnames)} over HTTPS.")
    else:
        click.echo("No custom domain of the app uses it yet: add one with kapal domains:add.")


COMMANDS: list[click.Command] = [show, add, update, remove]
