"""Custom domains and certificates through the real CLI, API and router: `kapal domains:add`
and `certs:add`, then the router serves the domain over HTTP and HTTPS with that certificate
(and the app's own hostname with the local CA's)."""

from __future__ import annotations

import socket
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from kapal.domain.localca import issue_server_certificate, make_authority
from tests.e2e.kapal_server import KapalServer, new_user

pytestmark = pytest.mark.e2e
WAIT = 30.0  # for the router to pick a change up (a wake-up, else its 1 s refresh)


def served_names(port: int, server_name: str, trust: ssl.SSLContext) -> list[str]:
    """The DNS names of the certificate the router presents for `server_name`."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        trust.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        peer = tls.getpeercert()
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
        status = tls.recv(64).split(b" ")[1]
    assert status != b"404", f"the router does not serve {server_name}"
    return [value for kind, value in peer["subjectAltName"] if kind == "DNS"]


def test_domains_and_certs_from_the_cli_to_the_router(
    kapal_server: KapalServer, tmp_path: Path
) -> None:
    gina = new_user(kapal_server, "gina")
    gina.kapal("signup", "--email", "gina@example.com", input="gina's password\n")
    gina.kapal("create", "gina-domains")

    added = gina.kapal("domains:add", "www.gina.test", "-a", "gina-domains")
    assert "Adding www.gina.test to ⬢ gina-domains... done" in added.stderr
    listed = gina.kapal("domains", "-a", "gina-domains").stdout
    assert "gina-domains.localhost" in listed and "www.gina.test" in listed

    now = datetime.now(UTC)
    authority = make_authority(now, "Gina's CA")
    issued = issue_server_certificate(authority, ["www.gina.test"], now)
    cert, key = tmp_path / "gina.crt", tmp_path / "gina.key"
    cert.write_text(issued.certificate)
    key.write_text(issued.private_key)
    certs = gina.kapal("certs:add", str(cert), str(key), "-a", "gina-domains")
    assert "Serves www.gina.test over HTTPS." in certs.stdout
    assert "PRIVATE KEY" not in certs.stdout + certs.stderr
    assert "www.gina.test" in gina.kapal("certs", "-a", "gina-domains").stdout

    local_ca = (kapal_server.root / "data" / "tls" / "ca.pem").read_text()
    trust = ssl.create_default_context(cadata=local_ca + authority.certificate)
    port = kapal_server.ports["router_tls"]
    deadline = time.monotonic() + WAIT
    while True:
        try:
            names = served_names(port, "www.gina.test", trust)
            break
        except (ssl.SSLCertVerificationError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert names == ["www.gina.test"]
    assert served_names(port, "gina-domains.localhost", trust) == ["gina-domains.localhost"]

    # Plain HTTP serves the domain as it serves the app's own hostname (nothing deployed yet).
    router = f"http://127.0.0.1:{kapal_server.ports['router']}/"
    own = httpx.get(router, headers={"Host": "gina-domains.localhost"}, timeout=30)
    custom = httpx.get(router, headers={"Host": "www.gina.test"}, timeout=30)
    assert custom.status_code == own.status_code != 404

    removed = gina.kapal("domains:remove", "www.gina.test", "-a", "gina-domains")
    assert "Removing www.gina.test from ⬢ gina-domains... done" in removed.stderr
    deadline = time.monotonic() + WAIT
    while httpx.get(router, headers={"Host": "www.gina.test"}, timeout=30).status_code != 404:
        assert time.monotonic() < deadline, "the removed domain is still served"
        time.sleep(0.2)
