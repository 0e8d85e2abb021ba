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
    """Print the environment for the official Heroku CLI: eval "$(kapal heroku-env)"."""
    parts = urlsplit(env.api_url)
    host, port = parts.hostname or "", parts.port or 80
    if parts.scheme != "http" or host not in LOCAL_HOSTS:
        raise CliError(
            f"The Heroku CLI only sends its token to localhost or 127.0.0.1, and {env.api_url} "
            "is neither.\nForward Kapal's ports to this machine first, e.g. "
            "ssh -L 5000:localhost:5000 -L 5001:localhost:5001 -L 5002:localhost:5002 "
            "-L 5443:localhost:5443 <kapal host>,\nthen run KAPAL_API_URL=http://localhost:5000 "
            "kapal heroku-env."
        )
    tls = env.client(authenticated=False).platform_tls()
    ca_file = _ca_file(env, tls["ca_file"], tls["ca_certificate"], f"{host}-{port}")
    api = f"http://{host}:{port}"
    git_host = f"{host}:{tls['ports']['api_tls']}"
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
        f"export NODE_EXTRA_CA_CERTS={shlex.quote(str(ca_file))}",
        "# Once, so that git trusts Kapal's HTTPS remote:",
        f"git config --global http.https://{git_host}/.sslCAInfo {shlex.quote(str(ca_file))}",
    ]
    click.echo("\n".join(lines))


def _ca_file(env: CliEnv, path: str, certificate: str, label: str) -> Path:
    """Kapal's CA file where this user can read it as Kapal has it; else (another user's data
    directory, a forwarded Kapal) a copy in this user's config directory."""
    served = Path(path)
    try:
        if served.read_text() == certificate:
            return served
    except OSError:
        pass
    base = env.environ.get("XDG_CONFIG_HOME") or str((env.home or Path.home()) / ".config")
    copy = Path(base) / "kapal" / f"ca-{label}.pem"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(certificate)
    return copy


COMMANDS = [heroku_env]
