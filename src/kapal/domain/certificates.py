"""TLS certificates users upload for their domains (SNI endpoints): parsed and checked before
the router is given them. The private key is only ever read here, never shown."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kapal.domain.errors import InvalidParams
from kapal.domain.hostnames import covers

MAX_CHAIN = 64 * 1024
MAX_KEY = 16 * 1024
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class CertificateInfo:
    """What Heroku's `ssl_cert` shows of a certificate (its first one, the server's)."""

    cert_domains: tuple[str, ...]
    subject: str
    issuer: str
    starts_at: datetime
    expires_at: datetime
    self_signed: bool
    fingerprint: str  # SHA-256 of the DER, hex pairs joined by ":"

    def covers(self, hostname: str) -> bool:
        return any(covers(name, hostname) for name in self.cert_domains)


def inspect_certificate(chain_pem: str, key_pem: str, now: datetime) -> CertificateInfo:
    """Check a certificate chain and its private key (PEM) as a TLS server would use them:
    both parse, the key is the first certificate's, and that certificate is valid `now`."""
    if not isinstance(chain_pem, str) or not chain_pem.strip():
        raise InvalidParams(
            "certificate_chain is empty: give the certificate (PEM), then any "
            "intermediate certificates."
        )
    if not isinstance(key_pem, str) or not key_pem.strip():
        raise InvalidParams("private_key is empty: give the certificate's private key (PEM).")
    if len(chain_pem) > MAX_CHAIN or len(key_pem) > MAX_KEY:
        raise InvalidParams(
            f"The certificate chain is limited to {MAX_CHAIN // 1024} kB and the private key "
            f"to {MAX_KEY // 1024} kB."
        )
    if "PRIVATE KEY" in chain_pem:
        # The chain is shown to anyone with access to the app; a key in it would be too.
        raise InvalidParams(
            "certificate_chain contains a private key: give the certificates only, and the "
            "key separately as private_key."
        )
    leaf = _leaf(chain_pem)
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:
        raise InvalidParams(
            "private_key is encrypted: give it without a passphrase (openssl pkey -in KEY)."
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidParams(
            "private_key is not a PEM private key (-----BEGIN PRIVATE KEY-----)."
        ) from None
    if key.public_key().public_bytes(*_SPKI) != leaf.public_key().public_bytes(*_SPKI):
        raise InvalidParams(
            "private_key does not match the certificate: the first certificate of the chain "
            "must be the one this key signs for."
        )
    info = _info(leaf)
    if info.expires_at <= now:
        raise InvalidParams(f"The certificate expired on {info.expires_at:%Y-%m-%d %H:%M:%S} UTC.")
    if info.starts_at > now:
        raise InvalidParams(
            f"The certificate is not valid before {info.starts_at:%Y-%m-%d %H:%M:%S} UTC."
        )
    if not info.cert_domains:
        raise InvalidParams("The certificate names no host (no DNS subject alternative name).")
    return info


def describe_certificate(chain_pem: str) -> CertificateInfo:
    """What a stored chain's first certificate says (it was checked when it was uploaded)."""
    return _info(_leaf(chain_pem))


def _leaf(chain_pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificates(chain_pem.encode())[0]
    except ValueError:
        raise InvalidParams(
            "certificate_chain is not a PEM certificate (-----BEGIN CERTIFICATE-----)."
        ) from None


def _info(leaf: x509.Certificate) -> CertificateInfo:
    digest = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    return CertificateInfo(
        cert_domains=certificate_names(leaf),
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        starts_at=leaf.not_valid_before_utc,
        expires_at=leaf.not_valid_after_utc,
        self_signed=leaf.issuer == leaf.subject,
        fingerprint=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper(),
    )


def certificate_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The DNS names a certificate is for: its subject alternative names, else (as old
    clients read it) its subject's common name."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [
            str(attr.value) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    return tuple(dict.fromkeys(name.lower().rstrip(".") for name in names if name))
