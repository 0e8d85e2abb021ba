"""The router's own certificates from Kapal's local CA (made once in the data directory; users
trust its ca.pem): one for `<apps domain>` and `*.<apps domain>`, served for every name no
uploaded certificate covers, and, where TLS clients match no such wildcard (a one-label apps
domain such as `localhost`: they want two labels after `*.`), one per app hostname.

cryptography is imported only when something must be signed: a router whose files exist and
whose apps domain takes the wildcard never loads it."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kapal.router.routes import RouteTable

if TYPE_CHECKING:
    from kapal.domain.localca import Issued

logger = logging.getLogger(__name__)

RENEW_AFTER = 300 * 86400  # seconds: the server certificate is renewed well before it expires


def local_certificate(directory: Path, apps_domain: str) -> tuple[Path, Path]:
    """The local CA's certificate for `<apps domain>` and `*.<apps domain>` (chain and key
    files), made on first use and renewed when old; the CA (ca.pem) is made once."""
    domain = apps_domain.lower().strip(".")
    chain = directory / f"server-{domain}.pem"
    key = directory / f"server-{domain}-key.pem"
    try:
        fresh = time.time() - chain.stat().st_mtime < RENEW_AFTER and key.exists()
    except FileNotFoundError:
        fresh = False
    if fresh:
        return chain, key
    from kapal.domain.localca import issue_server_certificate

    issued = issue_server_certificate(authority(directory), [domain, f"*.{domain}"], _now())
    _replace(key, issued.private_key, 0o600)
    _replace(chain, issued.certificate, 0o644)
    logger.info("made a certificate for *.%s signed by %s", domain, directory / "ca.pem")
    return chain, key


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
    """A LocalIssuer: signs a certificate (kept in memory only) per app hostname when the
    apps domain has one label; with more, the wildcard serves them and this signs nothing."""

    def __init__(self, directory: Path, apps_domain: str) -> None:
        self.directory = directory
        self.domain = apps_domain.lower().strip(".")
        self._authority: Issued | None = None

    def hostnames(self, table: RouteTable) -> set[str]:
        if "." in self.domain:
            return set()
        return {f"{name}.{self.domain}" for name in table.apps}

    def __call__(self, hostname: str) -> tuple[str, str]:
        from kapal.domain.localca import issue_server_certificate

        if self._authority is None:
            self._authority = authority(self.directory)
        issued = issue_server_certificate(self._authority, [hostname], _now())
        return issued.certificate, issued.private_key


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
