"""Uploaded certificates are checked as a TLS server would use them; the local CA signs the
router's development certificate. Every certificate here is made fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.tls_certs import key_pem, self_signed

from kapal.domain.certificates import describe_certificate, inspect_certificate
from kapal.domain.errors import InvalidParams
from kapal.domain.localca import issue_server_certificate, make_authority

NOW = datetime.now(UTC)


def test_a_good_certificate_is_described() -> None:
    issued = self_signed("www.example.com", "*.example.org", days=10)
    info = inspect_certificate(issued.certificate, issued.private_key, NOW)
    assert info.cert_domains == ("www.example.com", "*.example.org")
    assert info.self_signed
    assert info.subject == info.issuer == "CN=www.example.com"
    assert info.starts_at < NOW < info.expires_at
    assert len(info.fingerprint.split(":")) == 32
    assert info.covers("www.example.com") and info.covers("api.example.org")
    assert not info.covers("example.com")
    assert describe_certificate(issued.certificate) == info


def test_without_alternative_names_the_common_name_counts() -> None:
    issued = self_signed("legacy.example.com", san=False)
    info = inspect_certificate(issued.certificate, issued.private_key, NOW)
    assert info.cert_domains == ("legacy.example.com",)


def refused(chain: str, key: str, now: datetime = NOW) -> str:
    with pytest.raises(InvalidParams) as error:
        inspect_certificate(chain, key, now)
    assert "BEGIN PRIVATE" not in error.value.message.replace("(-----BEGIN PRIVATE KEY-----)", "")
    return error.value.message


def test_bad_certificates_are_refused_saying_why() -> None:
    good = self_signed("www.example.com")
    assert "certificate_chain is empty" in refused("", good.private_key)
    assert "private_key is empty" in refused(good.certificate, " ")
    assert "not a PEM certificate" in refused("hello", good.private_key)
    assert "not a PEM certificate" in refused(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", good.private_key
    )
    assert "not a PEM private key" in refused(good.certificate, "nope")
    assert "contains a private key" in refused(good.certificate + good.private_key, "x")
    other = self_signed("www.example.com")
    assert "does not match" in refused(good.certificate, other.private_key)
    assert "limited to" in refused(good.certificate * 200, good.private_key)


def test_an_encrypted_key_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = self_signed("www.example.com", key=key)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    assert "encrypted" in refused(issued.certificate, encrypted)
    assert inspect_certificate(issued.certificate, key_pem(key), NOW).self_signed


def test_expired_and_not_yet_valid_certificates_are_refused() -> None:
    expired = self_signed("www.example.com", days=1, starts_in=-3)
    assert "expired on" in refused(expired.certificate, expired.private_key)
    later = self_signed("www.example.com", days=30, starts_in=2)
    assert "not valid before" in refused(later.certificate, later.private_key)
    # What counts is the time given.
    good = self_signed("www.example.com", days=30)
    assert "expired" in refused(good.certificate, good.private_key, NOW + timedelta(days=40))


def test_the_local_ca_signs_a_chain_for_the_apps_domain() -> None:
    authority = make_authority(NOW)
    issued = issue_server_certificate(authority, ["localhost", "*.localhost"], NOW)
    info = inspect_certificate(issued.certificate, issued.private_key, NOW)
    assert info.cert_domains == ("localhost", "*.localhost")
    assert not info.self_signed
    assert info.issuer == "CN=Kapal local CA"
    chain = x509.load_pem_x509_certificates(issued.certificate.encode())
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=localhost", "CN=Kapal local CA"]
    chain[0].verify_directly_issued_by(chain[1])
    ca = chain[1].extensions.get_extension_for_class(x509.BasicConstraints).value
    assert ca.ca and not chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
