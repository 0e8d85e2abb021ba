"""Custom domains and SNI endpoints (an app's TLS certificates) over the Platform API."""

from __future__ import annotations

from typing import NotRequired, TypedDict, cast
from urllib.parse import quote

from kapal.client.http import KapalClient
from kapal.client.types import Ref

PAGE = 1000  # domains asked for per request, as Heroku's CLI asks


class NamedRef(TypedDict):
    id: str
    name: str


class Domain(TypedDict):
    id: str
    hostname: str
    kind: str  # heroku (the app's own hostname) or custom
    cname: str | None
    status: str
    sni_endpoint: NamedRef | None
    app: NotRequired[Ref]


class SslCert(TypedDict):
    cert_domains: list[str]
    expires_at: str
    starts_at: str
    issuer: str
    subject: str


# `self_signed?` has a question mark, as in Heroku's schema, so it is read with .get().
class SniEndpoint(TypedDict):
    id: str
    name: str
    certificate_chain: str
    domains: list[str]  # ids of the domains that use it
    ssl_cert: SslCert
    app: NotRequired[Ref]


def _app(app: str) -> str:
    return f"/apps/{quote(app, safe='')}"


def domains(client: KapalClient, app: str) -> list[Domain]:
    """Every domain of the app, page by page (206 and Next-Range), the default one included."""
    found: list[Domain] = []
    header = f"id ..; max={PAGE};"
    while True:
        response = client.request("GET", f"{_app(app)}/domains", headers={"Range": header})
        found += cast(list[Domain], response.json())
        following = response.headers.get("Next-Range")
        if response.status_code != 206 or not following:
            return found
        header = following


def add_domain(client: KapalClient, app: str, hostname: str, cert: str | None = None) -> Domain:
    body = {"hostname": hostname, "sni_endpoint": cert}
    response = client.request("POST", f"{_app(app)}/domains", json_body=body)
    return cast(Domain, response.json())


def update_domain(client: KapalClient, app: str, hostname: str, cert: str | None) -> Domain:
    path = f"{_app(app)}/domains/{quote(hostname, safe='')}"
    response = client.request("PATCH", path, json_body={"sni_endpoint": cert})
    return cast(Domain, response.json())


def remove_domain(client: KapalClient, app: str, hostname: str) -> Domain:
    response = client.request("DELETE", f"{_app(app)}/domains/{quote(hostname, safe='')}")
    return cast(Domain, response.json())


def sni_endpoints(client: KapalClient, app: str) -> list[SniEndpoint]:
    response = client.request("GET", f"{_app(app)}/sni-endpoints")
    return cast(list[SniEndpoint], response.json())


def add_sni_endpoint(client: KapalClient, app: str, chain: str, key: str) -> SniEndpoint:
    body = {"certificate_chain": chain, "private_key": key}
    response = client.request("POST", f"{_app(app)}/sni-endpoints", json_body=body)
    return cast(SniEndpoint, response.json())


def update_sni_endpoint(
    client: KapalClient, app: str, name: str, chain: str, key: str
) -> SniEndpoint:
    body = {"certificate_chain": chain, "private_key": key}
    path = f"{_app(app)}/sni-endpoints/{quote(name, safe='')}"
    return cast(SniEndpoint, client.request("PATCH", path, json_body=body).json())


def remove_sni_endpoint(client: KapalClient, app: str, name: str) -> SniEndpoint:
    path = f"{_app(app)}/sni-endpoints/{quote(name, safe='')}"
    return cast(SniEndpoint, client.request("DELETE", path).json())
