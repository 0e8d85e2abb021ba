"""HTTPS through the router on real sockets: custom domains over HTTP and HTTPS, the
certificate chosen by SNI (the app's own for its domain, the local CA's for the apps domain),
X-Forwarded-Proto/-Port, and a certificate uploaded while the router runs."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.integration.router.router_harness import Client, ListSink, app, dyno, fields

from kapal.domain.localca import Issued, issue_server_certificate, make_authority
from kapal.router import Certificate, Router, RouterConfig, RouteTable
from kapal.router.localcerts import AppCertificates, local_certificate
from kapal.router.tls import SniCertificates

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
NOW = datetime.now(UTC)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})  # as the router process runs


class Certificates:
    """The SNI endpoints' PEMs, as the store would give them."""

    def __init__(self) -> None:
        self.pems: dict[str, Issued] = {}

    def __call__(self, endpoint_id: str) -> tuple[str, str]:
        issued = self.pems[endpoint_id]
        return issued.certificate, issued.private_key


def trusting(*cas: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata="\n".join(cas))
    return context


async def https(
    port: int, server_name: str, trust: ssl.SSLContext
) -> tuple[Client, dict[str, object]]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=trust, server_hostname=server_name
    )
    peer = writer.get_extra_info("ssl_object").getpeercert()
    return Client(reader, writer), peer


def names(peer: dict[str, object]) -> list[str]:
    return [value for kind, value in peer["subjectAltName"] if kind == "DNS"]  # type: ignore[attr-defined]


async def test_custom_domains_over_http_and_https_with_the_right_certificate(
    tmp_path: Path,
) -> None:
    chain, key = local_certificate(tmp_path / "tls", "localhost")
    local_ca = (tmp_path / "tls" / "ca.pem").read_text()
    customer_ca = make_authority(NOW, "Customer CA")
    loader = Certificates()
    loader.pems["e1"] = issue_server_certificate(customer_ca, ["www.example.com"], NOW)
    trust = trusting(local_ca, customer_ca.certificate)
    tables = [
        RouteTable.of(
            app("demo", web_quantity=1),
            domains={"www.example.com": "demo", "*.example.org": "demo"},
            certificates={"www.example.com": Certificate("e1", "1")},
        )
    ]
    async with dyno() as fake:
        tables[0] = RouteTable.of(
            app("demo", up=(fake.up(),)),
            domains=tables[0].domains,
            certificates=tables[0].certificates,
        )
        sink = ListSink()
        router = Router(
            RouterConfig(port=0, tls_port=0),
            lambda: tables[0],
            sink,
            SniCertificates(chain, key, loader, AppCertificates(tmp_path / "tls", "localhost")),
        )
        await router.start()
        try:
            assert router.tls_port not in (0, router.port)

            # Plain HTTP: the custom domains route to the app.
            plain = await Client.open(router.port)
            for host in ("www.example.com", "api.example.org:8080", "demo.localhost"):
                response = await plain.request(host=host)
                assert response.status == 200, (host, response.body)
                echoed = dict(response.json()["headers"])  # type: ignore[arg-type]
                assert echoed["X-Forwarded-Proto"] == "http"
                assert echoed["X-Forwarded-Port"] == str(router.port)
            assert (await plain.request(host="www.example.net")).status == 404
            await plain.close()

            # HTTPS: the domain's own certificate, verified against its CA.
            client, peer = await https(router.tls_port, "www.example.com", trust)
            assert names(peer) == ["www.example.com"]
            response = await client.request(host="www.example.com")
            assert response.status == 200
            echoed = dict(response.json()["headers"])  # type: ignore[arg-type]
            assert echoed["X-Forwarded-Proto"] == "https"
            assert echoed["X-Forwarded-Port"] == str(router.tls_port)
            assert echoed["Host"] == "www.example.com"
            # Keep-alive over TLS: a second request on the same connection.
            assert (await client.request(host="www.example.com")).status == 200
            await client.close()

            # An app's own hostname gets one from the local CA (clients match no
            # `*.localhost`); a domain without a certificate gets the default one.
            client, peer = await https(router.tls_port, "demo.localhost", trust)
            assert names(peer) == ["demo.localhost"]
            assert (await client.request(host="demo.localhost")).status == 200
            await client.close()
            with pytest.raises(ssl.SSLCertVerificationError):
                await https(router.tls_port, "api.example.org", trust)

            # A certificate added while the router runs is served after the next refresh.
            loader.pems["e2"] = issue_server_certificate(customer_ca, ["*.example.org"], NOW)
            tables[0] = RouteTable.of(
                *tables[0].apps.values(),
                domains=tables[0].domains,
                certificates={
                    **tables[0].certificates,
                    "*.example.org": Certificate("e2", "1"),
                },
            )
            await router.refresh()
            client, peer = await https(router.tls_port, "api.example.org", trust)
            assert names(peer) == ["*.example.org"]
            response = await client.request(host="api.example.org")
            assert response.status == 200
            await client.close()
            lines = await sink.wait(7)
            assert any("host=api.example.org" in line for line in lines)
            demo = [fields(line)["protocol"] for line in lines if "host=demo.localhost" in line]
            assert demo == ["http", "https"]
        finally:
            await router.close(grace=1.0)
