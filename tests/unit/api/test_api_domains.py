"""/apps/{app}/domains and /apps/{app}/sni-endpoints through the real ASGI app: Heroku's JSON
shapes and paging, hostname and certificate checks, access, and keys never shown."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.tls_certs import self_signed
from tests.unit.api.test_api import signup

from kapal.entrypoints.router_store import RouterStore
from kapal.router import Certificate
from kapal.services.context import Context
from kapal.store.models import SniEndpoint

DOMAINS = "/apps/my-app/domains"
ENDPOINTS = "/apps/my-app/sni-endpoints"


def make_app(client: TestClient, name: str = "my-app", email: str = "ann@example.com") -> Any:
    auth = signup(client, email)
    assert client.post("/apps", json={"name": name}, headers=auth).status_code == 201
    return auth


def add_cert(client: TestClient, auth: dict[str, str], *names: str, path: str = ENDPOINTS) -> Any:
    issued = self_signed(*names)
    body = {"certificate_chain": issued.certificate, "private_key": issued.private_key}
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def test_domains_list_the_default_hostname_then_custom_ones(client: TestClient) -> None:
    auth = make_app(client)
    listed = client.get(DOMAINS, headers=auth)
    assert listed.status_code == 200
    [default] = listed.json()
    assert default["hostname"] == "my-app.localhost"
    assert default["kind"] == "heroku"
    assert default["app"]["name"] == "my-app"

    created = client.post(
        DOMAINS, json={"hostname": "WWW.Example.com.", "sni_endpoint": None}, headers=auth
    )
    assert created.status_code == 201, created.text
    domain = created.json()
    assert domain["hostname"] == "www.example.com"
    assert domain["kind"] == "custom"
    assert domain["cname"] == "my-app.localhost"
    assert domain["status"] == "succeeded"
    assert domain["sni_endpoint"] is None
    keys = {"id", "acm_status", "app", "created_at", "updated_at"}
    assert keys <= domain.keys()

    hostnames = [d["hostname"] for d in client.get(DOMAINS, headers=auth).json()]
    assert hostnames == ["my-app.localhost", "www.example.com"]
    by_id = client.get(f"{DOMAINS}/{domain['id']}", headers=auth)
    by_name = client.get(f"{DOMAINS}/www.example.com", headers=auth)
    assert by_id.json() == by_name.json() == domain
    assert client.get(f"{DOMAINS}/my-app.localhost", headers=auth).json() == default

    removed = client.delete(f"{DOMAINS}/www.example.com", headers=auth)
    assert removed.status_code == 200 and removed.json()["hostname"] == "www.example.com"
    assert client.get(f"{DOMAINS}/www.example.com", headers=auth).status_code == 404
    refused = client.delete(f"{DOMAINS}/my-app.localhost", headers=auth)
    assert refused.status_code == 422


def test_the_domain_list_pages_as_herokus_cli_asks(client: TestClient) -> None:
    auth = make_app(client)
    for n in range(5):
        assert client.post(DOMAINS, json={"hostname": f"h{n}.example.com"}, headers=auth).is_success
    seen: list[str] = []
    header = "hostname ..; max=2;"
    while True:
        page = client.get(DOMAINS, headers={**auth, "Range": header})
        seen += [d["hostname"] for d in page.json()]
        if page.status_code == 200:
            break
        assert page.status_code == 206
        header = page.headers["Next-Range"]
    assert seen == [f"h{n}.example.com" for n in range(5)] + ["my-app.localhost"]
    whole = client.get(DOMAINS, headers={**auth, "Range": "id ..; max=1000;"})
    assert whole.status_code == 200 and len(whole.json()) == 6
    newest = client.get(DOMAINS, headers={**auth, "Range": "hostname ..; order=desc, max=0"})
    assert newest.status_code == 206
    assert [d["hostname"] for d in newest.json()] == ["my-app.localhost"]
    assert newest.headers["Next-Range"] == "hostname ]my-app.localhost..; order=desc, max=1"


def test_hostnames_are_checked(client: TestClient) -> None:
    auth = make_app(client)
    make_app(client, "other-app", "bob@example.com")
    bad = [
        "https://www.example.com",
        "www.example.com:443",
        "www.example.com/path",
        "-bad.example.com",
        "com",
        "a..b.com",
        "x" * 64 + ".example.com",
        "localhost",
        "other-app.localhost",
        "*.localhost",
        "www.*.example.com",
        "10.0.0.1",
    ]
    for hostname in bad:
        response = client.post(DOMAINS, json={"hostname": hostname}, headers=auth)
        assert response.status_code == 422, hostname
        assert response.json()["id"] == "invalid_params", hostname
    assert client.post(DOMAINS, json={"hostname": "*.example.com"}, headers=auth).is_success
    again = client.post(DOMAINS, json={"hostname": "*.example.com"}, headers=auth)
    assert again.status_code == 422


def test_a_hostname_belongs_to_one_app(client: TestClient) -> None:
    auth = make_app(client)
    bob = make_app(client, "bob-app", "bob@example.com")
    assert client.post(DOMAINS, json={"hostname": "www.example.com"}, headers=auth).is_success
    taken = client.post("/apps/bob-app/domains", json={"hostname": "www.example.com"}, headers=bob)
    assert taken.status_code == 422
    assert taken.json() == {
        "id": "invalid_params",
        "message": "www.example.com is already in use by another app.",
    }
    # Nobody else sees or changes another user's domains or certificates.
    assert client.get(DOMAINS, headers=bob).status_code == 403
    assert client.delete(f"{DOMAINS}/www.example.com", headers=bob).status_code == 403
    assert client.get(ENDPOINTS, headers=bob).status_code == 403
    assert client.get(DOMAINS).status_code == 401


def test_sni_endpoints_never_show_the_private_key(client: TestClient, ctx: Context) -> None:
    auth = make_app(client)
    assert client.get(ENDPOINTS, headers=auth).json() == []
    client.post(DOMAINS, json={"hostname": "www.example.com"}, headers=auth)
    client.post(DOMAINS, json={"hostname": "api.example.com"}, headers=auth)
    client.post(DOMAINS, json={"hostname": "example.org"}, headers=auth)
    endpoint = add_cert(client, auth, "*.example.com")
    assert "PRIVATE KEY" not in str(endpoint)
    assert endpoint["certificate_chain"].startswith("-----BEGIN CERTIFICATE-----")
    assert endpoint["ssl_cert"]["cert_domains"] == ["*.example.com"]
    assert endpoint["ssl_cert"]["self_signed?"] is True
    assert {"expires_at", "starts_at", "issuer", "subject"} <= endpoint["ssl_cert"].keys()
    assert endpoint["app"]["name"] == "my-app"

    # The domains its certificate covers use it; the others keep none.
    domains = {d["hostname"]: d for d in client.get(DOMAINS, headers=auth).json()}
    assert domains["www.example.com"]["sni_endpoint"] == {
        "id": endpoint["id"],
        "name": endpoint["name"],
    }
    assert domains["api.example.com"]["sni_endpoint"]["id"] == endpoint["id"]
    assert domains["example.org"]["sni_endpoint"] is None
    assert sorted(endpoint["domains"]) == sorted(
        [domains["www.example.com"]["id"], domains["api.example.com"]["id"]]
    )
    for ident in (endpoint["id"], endpoint["name"]):
        shown = client.get(f"{ENDPOINTS}/{ident}", headers=auth)
        assert shown.status_code == 200 and "PRIVATE KEY" not in shown.text

    # The router's snapshot names the certificate for those domains.
    router_store = RouterStore(ctx.store.url)
    table = router_store.route_table()
    assert table.domains["www.example.com"] == "my-app"
    version = table.certificates["www.example.com"]
    assert isinstance(version, Certificate) and version.endpoint_id == endpoint["id"]

    # A renewal that no longer covers api.example.com moves it to none.
    renewed = self_signed("www.example.com")
    patched = client.patch(
        f"{ENDPOINTS}/{endpoint['name']}",
        json={"certificate_chain": renewed.certificate, "private_key": renewed.private_key},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["ssl_cert"]["cert_domains"] == ["www.example.com"]
    assert router_store.route_table().certificates["www.example.com"] != version
    assert "api.example.com" not in router_store.route_table().certificates
    router_store.close()

    deleted = client.delete(f"{ENDPOINTS}/{endpoint['id']}", headers=auth)
    assert deleted.status_code == 200 and "PRIVATE KEY" not in deleted.text
    assert client.get(ENDPOINTS, headers=auth).json() == []
    assert client.get(f"{DOMAINS}/www.example.com", headers=auth).json()["sni_endpoint"] is None
    with ctx.store.session() as s:
        assert s.scalars(select(SniEndpoint)).all() == []


def test_a_domain_may_name_its_certificate(client: TestClient) -> None:
    auth = make_app(client)
    first = add_cert(client, auth, "www.example.com")
    add_cert(client, auth, "www.example.com", "example.com")
    named = client.post(
        DOMAINS, json={"hostname": "www.example.com", "sni_endpoint": first["name"]}, headers=auth
    )
    assert named.status_code == 201
    assert named.json()["sni_endpoint"]["id"] == first["id"]
    wrong = client.post(
        DOMAINS, json={"hostname": "www.example.org", "sni_endpoint": first["id"]}, headers=auth
    )
    assert wrong.status_code == 422
    assert "does not cover www.example.org" in wrong.json()["message"]
    missing = client.post(
        DOMAINS, json={"hostname": "www.example.net", "sni_endpoint": "nope"}, headers=auth
    )
    assert missing.status_code == 404

    # PATCH names another certificate; null goes back to any that covers the domain.
    second = client.get(ENDPOINTS, headers=auth).json()[1]
    path = f"{DOMAINS}/www.example.com"
    moved = client.patch(path, json={"sni_endpoint": second["name"]}, headers=auth)
    assert moved.status_code == 200 and moved.json()["sni_endpoint"]["id"] == second["id"]
    kept = client.patch(path, json={"sni_endpoint": None}, headers=auth)
    assert kept.status_code == 200 and kept.json()["sni_endpoint"]["id"] == second["id"]
    default = client.patch(f"{DOMAINS}/my-app.localhost", json={"sni_endpoint": None}, headers=auth)
    assert default.status_code == 422


def test_certificates_are_checked(client: TestClient) -> None:
    auth = make_app(client)
    good = self_signed("www.example.com")
    other = self_signed("www.example.com")
    expired = self_signed("www.example.com", days=1, starts_in=-3)
    cases = {
        "not PEM": ("hello", good.private_key, "not a PEM certificate"),
        "key not PEM": (good.certificate, "nope", "not a PEM private key"),
        "other key": (good.certificate, other.private_key, "does not match"),
        "expired": (expired.certificate, expired.private_key, "expired on"),
        "key in chain": (good.certificate + good.private_key, good.private_key, "private key"),
        "empty": ("", good.private_key, "empty"),
    }
    for case, (chain, key, message) in cases.items():
        response = client.post(
            ENDPOINTS, json={"certificate_chain": chain, "private_key": key}, headers=auth
        )
        assert response.status_code == 422, case
        assert response.json()["id"] == "invalid_params", case
        assert message in response.json()["message"], (case, response.json())
        assert "BEGIN" not in response.json()["message"] or case in ("not PEM", "key not PEM")
    missing = client.post(ENDPOINTS, json={"certificate_chain": good.certificate}, headers=auth)
    assert missing.status_code == 422
