"""`kapal domains*` and `kapal certs*` against the fake API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

DOMAINS = "/apps/demo/domains"
ENDPOINTS = "/apps/demo/sni-endpoints"


def domain(
    hostname: str,
    kind: str = "custom",
    endpoint: str | None = None,
    cname: str = "demo.localhost",
) -> dict[str, Any]:
    return {
        "id": f"id-{hostname}",
        "hostname": hostname,
        "kind": kind,
        "cname": None if kind == "heroku" else cname,
        "status": "succeeded",
        "sni_endpoint": {"id": f"id-{endpoint}", "name": endpoint} if endpoint else None,
    }


def endpoint(name: str = "quiet-brook-12345", **cert: Any) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "certificate_chain": "-----BEGIN CERTIFICATE-----\n...",
        "domains": ["id-www.example.com"],
        "ssl_cert": {
            "cert_domains": ["www.example.com", "example.com"],
            "expires_at": "2027-02-01T00:00:00Z",
            "starts_at": "2026-11-01T00:00:00Z",
            "issuer": "CN=Example CA",
            "subject": "CN=www.example.com",
            "self_signed?": False,
            **cert,
        },
    }


def test_domains_lists_the_apps_hostname_and_a_table_following_pages(
    kapal: Kapal, fake: FakeApi
) -> None:
    pages = {
        "id ..; max=1000;": (
            [domain("demo.localhost", "heroku"), domain("example.com", endpoint="tls-1")],
            "id ]id-example.com..; max=1000",
        ),
        "id ]id-example.com..; max=1000": ([domain("www.example.com")], None),
    }

    def listing(request: httpx.Request) -> httpx.Response:
        items, following = pages[request.headers["range"]]
        headers = {"Next-Range": following} if following else {}
        return httpx.Response(206 if following else 200, json=items, headers=headers)

    fake.on("GET", DOMAINS, handler=listing)
    result = kapal("domains", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== ⬢ demo Kapal Domain\n"
        "\n"
        "demo.localhost\n"
        "\n"
        "=== ⬢ demo Custom Domains\n"
        "\n"
        "Domain Name      DNS Record Type  DNS Target      SNI Endpoint\n"
        "--------------------------------------------------------------\n"
        "example.com      ALIAS or ANAME   demo.localhost  tls-1\n"
        "www.example.com  CNAME            demo.localhost\n"
    )
    assert len(fake.sent("GET", DOMAINS)) == 2
    assert_token(fake.sent("GET", DOMAINS)[0])


def test_domains_add_and_remove(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", DOMAINS, domain("www.example.com", endpoint="tls-1"), status=201)
    result = kapal("domains:add", "-a", "demo", "www.example.com")
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", DOMAINS)) == {"hostname": "www.example.com", "sni_endpoint": None}
    assert result.stderr == "Adding www.example.com to ⬢ demo... done\n"
    # Apps on localhost: no DNS record can point there, the hosts file can.
    assert "add `127.0.0.1 www.example.com` to /etc/hosts" in result.stdout
    assert "SNI endpoint tls-1" in result.stdout
    public = domain("shop.example.com", cname="demo.apps.example.net")
    fake.on("POST", DOMAINS, public, status=201)
    pointed = kapal("domains:add", "-a", "demo", "shop.example.com")
    assert "Point shop.example.com at demo.apps.example.net with your DNS provider" in (
        pointed.stdout
    )

    taken = "www.x.com is already in use by another app."
    fake.error("POST", DOMAINS, 422, "invalid_params", taken)
    refused = kapal("domains:add", "-a", "demo", "www.x.com")
    assert refused.exit_code != 0
    assert "already in use by another app" in refused.stderr

    fake.on("PATCH", f"{DOMAINS}/www.example.com", domain("www.example.com", endpoint="tls-2"))
    updated = kapal("domains:update", "-a", "demo", "www.example.com", "--cert", "tls-2")
    assert updated.exit_code == 0, updated.output
    assert body(fake.one("PATCH", f"{DOMAINS}/www.example.com")) == {"sni_endpoint": "tls-2"}
    assert updated.stderr == "Updating www.example.com on ⬢ demo... done\n"
    assert "SNI endpoint tls-2" in updated.stdout

    fake.on("DELETE", f"{DOMAINS}/www.example.com", domain("www.example.com"))
    removed = kapal("domains:remove", "-a", "demo", "www.example.com")
    assert removed.exit_code == 0, removed.output
    assert removed.stderr == "Removing www.example.com from ⬢ demo... done\n"


def test_certs_lists_adds_and_removes(kapal: Kapal, fake: FakeApi, tmp_path: Path) -> None:
    fake.on("GET", ENDPOINTS, [])
    empty = kapal("certs", "-a", "demo")
    assert empty.stdout.startswith("⬢ demo has no SSL certificates.\n")

    fake.on("GET", ENDPOINTS, [endpoint()])
    listed = kapal("certs", "-a", "demo")
    assert listed.stdout.splitlines()[0].split() == [
        "Name",
        "Common",
        "Name(s)",
        "Expires",
        "Trusted",
        "Domains",
    ]
    assert "quiet-brook-12345  www.example.com, example.com" in listed.stdout

    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nfake\n-----END PRIVATE KEY-----\n")
    fake.on("POST", ENDPOINTS, endpoint(), status=201)
    fake.on("GET", DOMAINS, [domain("demo.localhost", "heroku"), domain("www.example.com")])
    added = kapal("certs:add", "-a", "demo", str(cert), str(key))
    assert added.exit_code == 0, added.output
    assert body(fake.one("POST", ENDPOINTS)) == {
        "certificate_chain": cert.read_text(),
        "private_key": key.read_text(),
    }
    assert added.stderr == "Adding SSL certificate to ⬢ demo... done, quiet-brook-12345\n"
    assert "Common Name(s): www.example.com, example.com" in added.stdout
    assert "Serves www.example.com over HTTPS." in added.stdout
    assert "PRIVATE KEY" not in added.output

    missing = kapal("certs:add", "-a", "demo", str(tmp_path / "nope.crt"), str(key))
    assert missing.exit_code != 0 and "Cannot read the certificate file" in missing.stderr

    unconfirmed = kapal("certs:remove", "-a", "demo")
    assert unconfirmed.exit_code != 0 and "--confirm demo" in unconfirmed.stderr
    fake.on("DELETE", f"{ENDPOINTS}/quiet-brook-12345", endpoint())
    removed = kapal("certs:remove", "-a", "demo", "--confirm", "demo")
    assert removed.exit_code == 0, removed.output
    assert removed.stderr == "Removing SSL certificate quiet-brook-12345 from ⬢ demo... done\n"

    fake.on("GET", ENDPOINTS, [endpoint(), endpoint("other-one-1")])
    several = kapal("certs:remove", "-a", "demo", "--confirm", "demo")
    assert several.exit_code != 0 and "--name" in several.stderr
