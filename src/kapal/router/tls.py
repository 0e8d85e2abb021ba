"""HTTPS: the router's TLS server context and the certificate each connection gets, chosen by
the name the client asks for (SNI): an app's uploaded certificate for its custom domain, else
the local CA's certificate for the apps domain.

Contexts are built when a route snapshot names a certificate (or a new version of one) and
kept until no snapshot names it: a handshake only looks a name up in a dict."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from kapal.router.routes import Certificate, RouteTable

logger = logging.getLogger(__name__)

LOCAL_PER_REFRESH = 32  # app hostnames given a local certificate per route table refresh


class CertificateLoader(Protocol):
    """An SNI endpoint's certificate chain and private key (PEM); may block (it is called in
    a worker thread)."""

    def __call__(self, endpoint_id: str) -> tuple[str, str]: ...


def server_context() -> ssl.SSLContext:
    """A TLS server context as browsers expect today: TLS 1.2 or newer, HTTP/1.1 over ALPN."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def context_from_pem(chain: str, key: str) -> ssl.SSLContext:
    """A server context for one certificate. The ssl module reads certificates only from
    files: these live in memory only (memfd), so a private key never touches a disk."""
    context = server_context()
    with _memory_file(chain) as chain_path, _memory_file(key) as key_path:
        context.load_cert_chain(chain_path, key_path)
    return context


@contextlib.contextmanager
def _memory_file(text: str) -> Iterator[str]:
    fd = os.memfd_create("kapal-tls", os.MFD_CLOEXEC)
    try:
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


class LocalIssuer(Protocol):
    """Certificates of the local CA for the apps' own hostnames, where the default
    certificate's `*.<apps domain>` does not serve them (kapal.router.localcerts)."""

    def hostnames(self, table: RouteTable) -> set[str]: ...

    def issue(self, hostnames: Sequence[str]) -> Mapping[str, tuple[str, str]]:
        """Chain and key (PEM) by hostname; blocking (called in a worker thread)."""
        ...


class Built(NamedTuple):
    """Contexts made in a worker thread for one route table (None: failed to load)."""

    endpoints: dict[Certificate, ssl.SSLContext | None]
    local: dict[str, ssl.SSLContext | None]


class SniCertificates:
    """The TLS context the router's HTTPS socket uses; its SNI callback switches each
    connection to the context of the certificate that covers the name asked for."""

    def __init__(
        self,
        default_chain: Path,
        default_key: Path,
        load: CertificateLoader,
        local: LocalIssuer | None = None,
    ) -> None:
        self.load = load
        self.local = local
        self.context = server_context()
        self.context.load_cert_chain(default_chain, default_key)
        self.context.sni_callback = self._choose
        # None: the certificate failed to load (it is tried again when it changes).
        self._loaded: Mapping[Certificate, ssl.SSLContext | None] = {}
        self._local: Mapping[str, ssl.SSLContext | None] = {}
        self._exact: Mapping[str, ssl.SSLContext] = {}
        self._wildcard: Mapping[str, ssl.SSLContext] = {}  # by the parent of `*.`

    def prepare(self, table: RouteTable) -> Built:
        """Build the contexts `table` needs that are not loaded yet (in a worker thread).
        A certificate that fails to load leaves its domains on the default certificate."""
        built = Built({}, {})
        loaded, local = self._loaded, self._local
        for certificate in set(table.certificates.values()) - loaded.keys():
            built.endpoints[certificate] = _context(self.load, certificate.endpoint_id)
        if self.local is not None:
            # A few each time: HTTPS waits for this (the route table does not).
            missing = sorted(self.local.hostnames(table) - local.keys())[:LOCAL_PER_REFRESH]
            if missing:
                built.local.update(_local_contexts(self.local, missing))
        return built

    def install(self, table: RouteTable, built: Built) -> None:
        """Serve `table`'s certificates (on the event loop, after `prepare`)."""
        available = {**self._loaded, **built.endpoints}
        loaded: dict[Certificate, ssl.SSLContext | None] = {}
        exact: dict[str, ssl.SSLContext] = {}
        wildcard: dict[str, ssl.SSLContext] = {}
        for hostname, certificate in table.certificates.items():
            if certificate not in available:
                continue
            context = loaded[certificate] = available[certificate]
            if context is None:
                continue
            if hostname.startswith("*."):
                wildcard[hostname[2:]] = context
            else:
                exact[hostname] = context
        local: dict[str, ssl.SSLContext | None] = {}
        if self.local is not None:
            made = {**self._local, **built.local}
            local = {name: made[name] for name in self.local.hostnames(table) if name in made}
            exact.update((name, context) for name, context in local.items() if context)
        self._loaded, self._local = loaded, local
        self._exact, self._wildcard = exact, wildcard

    def _choose(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        if not server_name:
            return
        name = server_name.lower().rstrip(".")
        context = self._exact.get(name)
        if context is None:
            context = self._wildcard.get(name.partition(".")[2])
        if context is not None:
            connection.context = context


def _local_contexts(local: LocalIssuer, hostnames: list[str]) -> dict[str, ssl.SSLContext | None]:
    try:
        issued = local.issue(hostnames)
    except Exception:
        logger.exception("local certificates for %s not made", ", ".join(hostnames))
        issued = {}
    return {
        name: _context(issued.__getitem__, name) if name in issued else None for name in hostnames
    }


def _context(source: Callable[[str], tuple[str, str]], name: str) -> ssl.SSLContext | None:
    try:
        return context_from_pem(*source(name))
    except Exception:
        logger.exception("certificate for %s not loaded", name)
        return None
