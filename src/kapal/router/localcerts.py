"""The router's own certificates from Kapal's local CA (made once in the data directory; users
trust its ca.pem): one for `<apps domain>` and `*.<apps domain>`, served for every name no
uploaded certificate covers, and, where TLS clients match no such wildcard (a one-label apps
domain such as `localhost`: they want two labels after `*.`), one per app hostname. Beside
them, the platform's own certificate for localhost (`platform_certificate`), which the API's
HTTPS port (git for the Heroku CLI's remote) and the agent's rendezvous serve.

cryptography is never loaded by a router that serves: what must be signed is signed by a
short-lived process (`local_certificate` at start, in the router's preparing child;
`python -m kapal.router.localcerts` for app hostnames) into files here, keys 0600."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kapal.router.routes import RouteTable

if TYPE_CHECKING:
    from kapal.domain.localca import Issued

logger = logging.getLogger(__name__)

RENEW_AFTER = 300 * 86400  # seconds: the server certificate is renewed well before it expires
HOSTS = "hosts"  # the app hostnames' keys and certificates, one file each
# The platform's own TLS endpoints on this machine (git and the API over HTTPS, the
# rendezvous), for the names the official Heroku CLI may only be pointed at.
PLATFORM = "platform.pem"
PLATFORM_NAMES = ("localhost", "127.0.0.1", "::1")
_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")  # a file name too: no `/`


def local_certificate(directory: Path, apps_domain: str) -> tuple[Path, Path]:
    """The local CA's certificate for `<apps domain>` and `*.<apps domain>` (chain and key
    files), made on first use and renewed when old; the CA (ca.pem) is made once."""
    domain = apps_domain.lower().strip(".")
    chain = directory / f"server-{domain}.pem"
    key = directory / f"server-{domain}-key.pem"
    if _fresh(chain) and key.exists():
        return chain, key
    from kapal.domain.localca import issue_server_certificate

    issued = issue_server_certificate(authority(directory), [domain, f"*.{domain}"], _now())
    _replace(key, issued.private_key, 0o600)
    _replace(chain, issued.certificate, 0o644)
    logger.info("made a certificate for *.%s signed by %s", domain, directory / "ca.pem")
    return chain, key


def platform_certificate(directory: Path) -> Path:
    """The local CA's certificate for localhost, 127.0.0.1 and ::1: one file, key then chain
    (0600), made on first use and renewed when old."""
    path = directory / PLATFORM
    if _fresh(path):
        return path
    from kapal.domain.localca import issue_server_certificate

    issued = issue_server_certificate(authority(directory), list(PLATFORM_NAMES), _now())
    _replace(path, issued.private_key + issued.certificate, 0o600)
    return path


def authority(directory: Path) -> Issued:
    """Kapal's local CA, made on first use: ca.pem (for users to trust) and ca-key.pem (0600)."""
    from kapal.domain.localca import Issued, make_authority

    ca_path, ca_key_path = directory / "ca.pem", directory / "ca-key.pem"
    if ca_path.exists() and ca_key_path.exists():
        return Issued(ca_path.read_text(), ca_key_path.read_text())
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o711)  # ca.pem is for users to trust; every key stays 0600
    made = make_authority(_now())
    _replace(ca_key_path, made.private_key, 0o600)
    _replace(ca_path, made.certificate, 0o644)
    return made


class AppCertificates:
    """A LocalIssuer: a certificate per app hostname when the apps domain has one label; with
    more, the wildcard serves them and this issues nothing. Each is signed once, by a
    short-lived process, into `hosts/` (renewed when old)."""

    def __init__(self, directory: Path, apps_domain: str) -> None:
        self.directory = directory
        self.domain = apps_domain.lower().strip(".")

    def hostnames(self, table: RouteTable) -> set[str]:
        if "." in self.domain:
            return set()
        return {f"{name}.{self.domain}" for name in table.apps}

    def issue(self, hostnames: Sequence[str]) -> Mapping[str, tuple[str, str]]:
        """The chain and key (PEM) of each of `hostnames` (a blocking call: it may sign)."""
        folder = self.directory / HOSTS
        wanted = [name for name in hostnames if _HOSTNAME.fullmatch(name)]
        stale = [name for name in wanted if not _fresh(folder / f"{name}.pem")]
        if stale:
            command = [sys.executable, "-m", __name__, str(self.directory), *stale]
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"signing failed: {done.stderr.strip()[-2000:]}")
        issued: dict[str, tuple[str, str]] = {}
        for name in wanted:
            text = (folder / f"{name}.pem").read_text()
            start = text.index(_CERTIFICATE)
            issued[name] = (text[start:], text[:start])
        return issued


def sign_hostnames(directory: Path, hostnames: Sequence[str]) -> None:
    """Sign a certificate for each hostname into `hosts/` (what `issue` runs in a child)."""
    from kapal.domain.localca import issue_server_certificate

    ca = authority(directory)
    folder = directory / HOSTS
    folder.mkdir(mode=0o700, exist_ok=True)
    for hostname in hostnames:
        if not _HOSTNAME.fullmatch(hostname):
            raise ValueError(f"not a hostname: {hostname!r}")
        issued = issue_server_certificate(ca, [hostname], _now())
        # Key and chain in one file, replaced whole: router workers may sign the same name at
        # once, and a reader must never pair one's key with the other's certificate.
        _replace(folder / f"{hostname}.pem", issued.private_key + issued.certificate, 0o600)


def _fresh(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime < RENEW_AFTER
    except FileNotFoundError:
        return False


def _now() -> datetime:
    return datetime.now(UTC)


def _replace(path: Path, text: str, mode: int) -> None:
    """Write a file whole, with `mode` from its first byte, then move it into place."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.new")  # router workers may race
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.fchmod(fd, mode)  # whatever the umask
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(partial, path)


if __name__ == "__main__":
    sign_hostnames(Path(sys.argv[1]), sys.argv[2:])
