"""Custom domains in the route table: exact hostnames and wildcards one label deep; and the
router's certificates: chosen by SNI, loaded once per version, made once per data directory."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from tests.tls_certs import self_signed

from kapal.domain.certificates import describe_certificate
from kapal.router.localcerts import AppCertificates, local_certificate, platform_certificate
from kapal.router.routes import AppRoute, Certificate, HostIndex, RouteTable
from kapal.router.tls import LOCAL_PER_REFRESH, Built, SniCertificates

DEMO = AppRoute("a1", "demo")
OTHER = AppRoute("a2", "other")
TABLE = RouteTable.of(
    DEMO,
    OTHER,
    domains={"www.example.com": "demo", "*.example.org": "other", "gone.example.com": "nope"},
)


def test_custom_domains_find_their_app() -> None:
    index = HostIndex(TABLE, "localhost")
    assert index.lookup(b"www.example.com") is DEMO
    assert index.lookup(b"WWW.Example.com:443") is DEMO
    assert index.lookup(b"www.example.com.") is DEMO
    assert index.lookup(b"api.example.org") is OTHER
    assert index.lookup(b"api.example.org.:8443") is OTHER
    assert index.lookup(b"demo.localhost") is DEMO
    for host in (b"example.org", b"a.b.example.org", b"example.com", b"gone.example.com"):
        assert index.lookup(host) is None, host


def test_an_exact_domain_wins_over_a_wildcard() -> None:
    table = RouteTable.of(
        DEMO, OTHER, domains={"*.example.com": "other", "www.example.com": "demo"}
    )
    index = HostIndex(table, "localhost")
    assert index.lookup(b"www.example.com") is DEMO
    assert index.lookup(b"api.example.com") is OTHER


class Loader:
    def __init__(self, pems: dict[str, tuple[str, str]]) -> None:
        self.pems = pems
        self.calls: list[str] = []

    def __call__(self, endpoint_id: str) -> tuple[str, str]:
        self.calls.append(endpoint_id)
        return self.pems[endpoint_id]


class FakeConnection:
    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context


def chosen(certs: SniCertificates, name: str | None) -> ssl.SSLContext:
    connection = FakeConnection(certs.context)
    certs._choose(connection, name, certs.context)  # type: ignore[arg-type]
    return connection.context


def test_sni_chooses_the_domains_certificate_loaded_once_per_version(tmp_path: Path) -> None:
    chain, key = local_certificate(tmp_path / "tls", "localhost")
    www, wild = self_signed("www.example.com"), self_signed("*.example.org")
    loader = Loader(
        {
            "e1": (www.certificate, www.private_key),
            "e2": (wild.certificate, wild.private_key),
            "bad": ("not a certificate", "nor a key"),
        }
    )
    certs = SniCertificates(chain, key, loader)
    v1, v2 = Certificate("e1", "1"), Certificate("e2", "1")
    table = RouteTable(
        domains=TABLE.domains,
        certificates={
            "www.example.com": v1,
            "*.example.org": v2,
            "x.example.net": Certificate("bad", "1"),
        },
    )
    certs.install(table, certs.prepare(table))
    assert sorted(loader.calls) == ["bad", "e1", "e2"]
    default = certs.context
    assert chosen(certs, "www.example.com") is not default
    assert chosen(certs, "WWW.example.com") is chosen(certs, "www.example.com")
    assert chosen(certs, "api.example.org") is not default
    assert chosen(certs, "api.example.org") is not chosen(certs, "www.example.com")
    for name in ("demo.localhost", "example.org", "x.example.net", None, ""):
        assert chosen(certs, name) is default, name

    # The same versions again: nothing is loaded; a new version of one is loaded alone.
    loader.calls.clear()
    # The bad one neither: it is tried again when it changes.
    assert certs.prepare(table) == Built({}, {})
    moved = RouteTable(certificates={"www.example.com": Certificate("e1", "2")})
    built = certs.prepare(moved)
    assert list(built.endpoints) == [Certificate("e1", "2")] and loader.calls == ["e1"]
    certs.install(moved, built)
    assert chosen(certs, "api.example.org") is default  # no longer named: dropped


def test_the_local_certificate_is_made_once_with_private_keys(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    chain, key = local_certificate(directory, "Apps.Example.com")
    assert describe_certificate(chain.read_text()).cert_domains == (
        "apps.example.com",
        "*.apps.example.com",
    )
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "ca.pem").stat().st_mode) == 0o644
    made = chain.read_text()
    assert local_certificate(directory, "apps.example.com") == (chain, key)
    assert chain.read_text() == made
    # Another apps domain gets its own certificate from the same CA.
    ca = (directory / "ca.pem").read_text()
    other, _ = local_certificate(directory, "localhost")
    assert other != chain and (directory / "ca.pem").read_text() == ca
    assert describe_certificate(other.read_text()).issuer == "CN=Kapal local CA"


def test_the_platform_certificate_covers_localhost_by_name_and_address(tmp_path: Path) -> None:
    """What the API's HTTPS port and the rendezvous serve: TLS clients check an address
    against IP entries, so 127.0.0.1 and ::1 are IP SANs, not DNS names."""
    path = platform_certificate(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert platform_certificate(tmp_path) == path
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(path)  # the key, then the chain, in the one file
    client = ssl.create_default_context(cafile=tmp_path / "ca.pem")
    for name in ("localhost", "127.0.0.1", "::1"):
        assert _handshake(server, client, name), name
    assert not _handshake(server, client, "example.com")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> bool:
    """Whether a client checking `name` accepts the server's certificate (in memory)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    near = client.wrap_bio(c_in, c_out, server_hostname=name)
    far = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side, outgoing, peer_in in ((near, c_out, s_in), (far, s_out, c_in)):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError:
                return False
            peer_in.write(outgoing.read())
        if near.version() is not None and far.version() is not None:
            return True
    return False


def test_apps_under_a_one_label_domain_get_their_own_local_certificate(tmp_path: Path) -> None:
    chain, key = local_certificate(tmp_path / "tls", "localhost")
    local = AppCertificates(tmp_path / "tls", "localhost")
    certs = SniCertificates(chain, key, Loader({}), local)
    table = RouteTable.of(DEMO, OTHER)
    assert local.hostnames(table) == {"demo.localhost", "other.localhost"}
    built = certs.prepare(table)
    certs.install(table, built)
    assert sorted(built.local) == ["demo.localhost", "other.localhost"]
    demo = chosen(certs, "demo.localhost")
    assert demo is not certs.context and demo is not chosen(certs, "other.localhost")
    assert chosen(certs, "nope.localhost") is certs.context
    # Made once; an app that is gone loses its certificate.
    assert certs.prepare(table) == Built({}, {})
    certs.install(RouteTable.of(OTHER), Built({}, {}))
    assert chosen(certs, "demo.localhost") is certs.context
    # Under a dotted apps domain the wildcard serves every app: nothing is signed.
    assert AppCertificates(tmp_path / "tls", "apps.test").hostnames(table) == set()


def test_many_apps_get_their_local_certificates_a_few_per_refresh(tmp_path: Path) -> None:
    chain, key = local_certificate(tmp_path / "tls", "localhost")
    certs = SniCertificates(chain, key, Loader({}), AppCertificates(tmp_path / "tls", "localhost"))
    table = RouteTable.of(
        *(AppRoute(f"id{n}", f"app{n:02d}") for n in range(LOCAL_PER_REFRESH + 8))
    )
    first = certs.prepare(table)
    certs.install(table, first)
    assert len(first.local) == LOCAL_PER_REFRESH
    second = certs.prepare(table)
    certs.install(table, second)
    assert len(second.local) == 8
    assert all(
        chosen(certs, f"app{n:02d}.localhost") is not certs.context
        for n in range(LOCAL_PER_REFRESH + 8)
    )
