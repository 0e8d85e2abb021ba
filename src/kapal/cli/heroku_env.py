"""`kapal heroku-env`: the shell lines that point the official Heroku CLI at this Kapal.

The Heroku CLI sends its token only to localhost or 127.0.0.1, always makes its git remote
`https://<HEROKU_GIT_HOST>/<app>.git`, and attaches `heroku run` over TLS it verifies; so the
lines name the API on localhost, git on Kapal's HTTPS port, and Kapal's local CA for Node
(NODE_EXTRA_CA_CERTS) and for git (http.<url>.sslCAInfo, scoped to that one URL). The rest keep
the token on this machine: no telemetry, no update checks, the account side call and the data
API calls (`pg:info`: api.data.heroku.com by default, sent the token) to Kapal."""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import urlsplit

import click

from kapal.cli.context import CliEnv, pass_env
from kapal.cli.errors import CliError

LOCAL_HOSTS = ("localhost", "127.0.0.1")


@click.command("heroku-env")
@pass_env
def heroku_env(env: CliEnv) -> None:
    """Print the shell lines that point the official Heroku CLI at this Kapal.

    \b
    Run: eval "$(kapal heroku-env)"   (or paste the lines it prints)

    They set HEROKU_HOST (and the particleboard and data hosts) to this Kapal's API,
    HEROKU_GIT_HOST to its HTTPS port, telemetry and update checks off so the token stays on
    this machine, and NODE_EXTRA_CA_CERTS to Kapal's CA (with the CAs it named before, if
    any); the last line runs `git config --global` so that git trusts Kapal's CA for Kapal's
    remote only. With GIT_SSL_CAINFO set, which overrides that, it is replaced by a bundle of
    its CAs and Kapal's. KAPAL_API_URL must name localhost or 127.0.0.1: the Heroku CLI sends
    its token nowhere else (forward a remote Kapal's ports over SSH).
    """
    parts = urlsplit(env.api_url)
    host, port = parts.hostname or "", parts.port or 80
    if parts.scheme != "http" or host not in LOCAL_HOSTS:
        raise CliError(
            f"The Heroku CLI only sends its token to localhost or 127.0.0.1, and {env.api_url} "
            "is neither.\nForward Kapal's ports to this machine first, e.g. "
            "ssh -L 5000:localhost:5000 -L 5001:localhost:5001 -L 5002:localhost:5002 "
            "-L 5443:localhost:5443 <kapal host> (or the KAPAL_*_PORT values it runs with),\n"
            "then run KAPAL_API_URL=http://localhost:5000 kapal heroku-env."
        )
    tls = env.client(authenticated=False).platform_tls()
    label = f"{host}-{port}"
    ca_file = _ca_file(env, tls["ca_file"], tls["ca_certificate"], label)
    api = f"http://{host}:{port}"
    git_host = f"{host}:{tls['ports']['api_tls']}"
    node_ca = _with_others(env, "NODE_EXTRA_CA_CERTS", ca_file, f"node-ca-{label}.pem")
    lines = [
        "# The official Heroku CLI against this Kapal: paste these lines into your shell, "
        'or run eval "$(kapal heroku-env)".',
        f"export HEROKU_HOST={api}",
        f"export HEROKU_PARTICLEBOARD_URL={api}",  # the CLI's account side call stays here
        f"export HEROKU_GIT_HOST={git_host}",
        # `pg:*` calls Heroku's data API, with the token, on this host and HEROKU_HOST's port.
        f"export HEROKU_DATA_HOST={host}",
        "export DISABLE_TELEMETRY=true",
        "export HEROKU_SKIP_NEW_VERSION_CHECK=true",
        "export HEROKU_DISABLE_AUTOUPDATE=1",
        f"export NODE_EXTRA_CA_CERTS={shlex.quote(str(node_ca))}",
    ]
    if env.environ.get("GIT_SSL_CAINFO"):
        git_ca = _with_others(env, "GIT_SSL_CAINFO", ca_file, f"git-ca-{label}.pem")
        lines += [
            "# GIT_SSL_CAINFO overrides git's per-URL setting: its CAs and Kapal's, together.",
            f"export GIT_SSL_CAINFO={shlex.quote(str(git_ca))}",
        ]
    lines += [
        "# So that git trusts Kapal's CA for Kapal's HTTPS remote (once; kept in ~/.gitconfig):",
        f"git config --global http.https://{git_host}/.sslCAInfo {shlex.quote(str(ca_file))}",
    ]
    click.echo("\n".join(lines))


def _config_dir(env: CliEnv) -> Path:
    base = env.environ.get("XDG_CONFIG_HOME") or str((env.home or Path.home()) / ".config")
    return Path(base) / "kapal"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ca_file(env: CliEnv, path: str, certificate: str, label: str) -> Path:
    """Kapal's CA file where this user can read it as Kapal has it; else (another user's data
    directory, a forwarded Kapal) a copy in this user's config directory."""
    served = Path(path)
    try:
        if served.read_text() == certificate:
            return served
    except OSError:
        pass
    return _write(_config_dir(env) / f"ca-{label}.pem", certificate)


def _with_others(env: CliEnv, variable: str, ca_file: Path, name: str) -> Path:
    """`ca_file`, or, when `variable` already names other CAs, a bundle of theirs and Kapal's
    in the config directory (made again each time: evaluating the lines twice is harmless)."""
    bundle = _config_dir(env) / name
    current = env.environ.get(variable, "")
    if not current or Path(current) == ca_file:
        return ca_file
    if Path(current) == bundle:  # the lines were evaluated before
        return bundle
    try:
        others = Path(current).read_text()
    except OSError as exc:
        raise CliError(f"{variable} names {current}, which cannot be read: {exc}") from None
    return _write(bundle, others.rstrip("\n") + "\n" + ca_file.read_text())


COMMANDS = [heroku_env]
