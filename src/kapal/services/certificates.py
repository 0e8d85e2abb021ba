"""SNI endpoints: an app's TLS certificates (chain and private key) the router serves for its
custom domains. Each custom domain uses the endpoint whose certificate covers it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kapal.domain.certificates import CertificateInfo, describe_certificate, inspect_certificate
from kapal.domain.errors import InvalidParams, NotFound
from kapal.domain.names import random_app_name
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.models import App, Domain, SniEndpoint, User

MAX_ENDPOINTS = 100  # per app


@dataclass(frozen=True)
class Endpoint:
    """An SNI endpoint as users see it: never its private key."""

    row: SniEndpoint
    info: CertificateInfo
    domains: list[Domain]


def list_endpoints(ctx: Context, user: User, app_ident: str) -> tuple[App, list[Endpoint]]:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        rows = s.scalars(
            select(SniEndpoint)
            .where(SniEndpoint.app_id == app.id)
            .order_by(SniEndpoint.created_at, SniEndpoint.name)
        )
        return app, [_endpoint(s, row) for row in rows]


def get_endpoint(ctx: Context, user: User, app_ident: str, ident: str) -> tuple[App, Endpoint]:
    """By id or name."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        return app, _endpoint(s, find_endpoint(s, app, ident))


def create_endpoint(
    ctx: Context, user: User, app_ident: str, chain: str, key: str
) -> tuple[App, Endpoint]:
    """Check and store a certificate; the app's custom domains it covers start using it."""
    inspect_certificate(chain, key, datetime.now(UTC))
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        count = (
            s.scalar(select(func.count(SniEndpoint.id)).where(SniEndpoint.app_id == app.id)) or 0
        )
        if count >= MAX_ENDPOINTS:
            raise InvalidParams(f"An app may have at most {MAX_ENDPOINTS} SNI endpoints.")
        row = SniEndpoint(
            app_id=app.id,
            name=_free_name(s),
            certificate_chain=chain.strip() + "\n",
            private_key=key.strip() + "\n",
        )
        s.add(row)
        s.flush()
        match_certificates(s, app)
        s.flush()
        result = _endpoint(s, row)
    ctx.event(app.id, f"Add SNI endpoint {row.name} by user {user.email}")
    ctx.wake()
    return app, result


def update_endpoint(
    ctx: Context, user: User, app_ident: str, ident: str, chain: str, key: str
) -> tuple[App, Endpoint]:
    """Replace an endpoint's certificate (a renewal); domains it no longer covers move to
    another certificate that does, or to none."""
    inspect_certificate(chain, key, datetime.now(UTC))
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        row = find_endpoint(s, app, ident)
        row.certificate_chain = chain.strip() + "\n"
        row.private_key = key.strip() + "\n"
        row.updated_at = datetime.now(UTC)  # the router loads the certificate again
        s.flush()
        match_certificates(s, app)
        s.flush()
        result = _endpoint(s, row)
    ctx.event(app.id, f"Update SNI endpoint {row.name} by user {user.email}")
    ctx.wake()
    return app, result


def delete_endpoint(ctx: Context, user: User, app_ident: str, ident: str) -> tuple[App, Endpoint]:
    """Remove a certificate; its domains move to another that covers them, or to none."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        row = find_endpoint(s, app, ident)
        result = _endpoint(s, row)
        for domain in result.domains:
            domain.sni_endpoint_id = None
        s.delete(row)
        s.flush()
        match_certificates(s, app)
    ctx.event(app.id, f"Remove SNI endpoint {row.name} by user {user.email}")
    ctx.wake()
    return app, result


def match_certificates(s: Session, app: App) -> None:
    """Give each of the app's custom domains a certificate that covers it: the one it has
    while that still does, else the newest that does, else none (the router's default)."""
    endpoints = list(
        s.scalars(
            select(SniEndpoint)
            .where(SniEndpoint.app_id == app.id)
            .order_by(SniEndpoint.created_at.desc(), SniEndpoint.name)
        )
    )
    infos = {row.id: describe_certificate(row.certificate_chain) for row in endpoints}
    for domain in s.scalars(select(Domain).where(Domain.app_id == app.id)):
        current = infos.get(domain.sni_endpoint_id or "")
        if current is not None and current.covers(domain.hostname):
            continue
        domain.sni_endpoint_id = next(
            (row.id for row in endpoints if infos[row.id].covers(domain.hostname)), None
        )


def find_endpoint(s: Session, app: App, ident: str) -> SniEndpoint:
    """One of the app's endpoints, by id or name."""
    row = s.scalar(
        select(SniEndpoint).where(
            SniEndpoint.app_id == app.id, (SniEndpoint.id == ident) | (SniEndpoint.name == ident)
        )
    )
    if row is None:
        raise NotFound(f"Couldn't find that SNI endpoint ({ident}) on {app.name}.")
    return row


def _endpoint(s: Session, row: SniEndpoint) -> Endpoint:
    domains = list(
        s.scalars(select(Domain).where(Domain.sni_endpoint_id == row.id).order_by(Domain.hostname))
    )
    return Endpoint(row, describe_certificate(row.certificate_chain), domains)


def _free_name(s: Session) -> str:
    for _ in range(20):
        name = random_app_name()
        if s.scalar(select(SniEndpoint.id).where(SniEndpoint.name == name)) is None:
            return name
    raise InvalidParams("Could not find a free SNI endpoint name; please try again.")
