"""Custom domains: hostnames the router serves for an app besides its own NAME.<apps domain>
(which is listed too, as Heroku lists NAME.herokuapp.com, but not stored: it follows the
app's name)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kapal.domain.certificates import describe_certificate
from kapal.domain.errors import InvalidParams, NotFound
from kapal.domain.hostnames import validate_hostname
from kapal.services.access import find_app
from kapal.services.certificates import find_endpoint, match_certificates
from kapal.services.context import Context
from kapal.store.models import App, Domain, SniEndpoint, User

MAX_DOMAINS = 1000  # per app, as on Heroku
_DEFAULT_ID = uuid.UUID("6b61706c-0000-4000-8000-646f6d61696e")  # names the default domains' ids


def default_domain(ctx: Context, app: App) -> Domain:
    """The app's own hostname, NAME.<apps domain>, as a domain of kind `heroku` (not stored)."""
    return Domain(
        id=str(uuid.uuid5(_DEFAULT_ID, app.id)),
        app_id=app.id,
        hostname=f"{app.name}.{ctx.settings.apps_domain.lower().strip('.')}",
        kind="heroku",
        cname=None,
        sni_endpoint_id=None,
        created_at=app.created_at,
        updated_at=app.updated_at,
    )


def list_domains(ctx: Context, user: User, app_ident: str) -> tuple[App, list[Domain]]:
    """The default domain, then the custom ones by hostname."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        custom = s.scalars(select(Domain).where(Domain.app_id == app.id).order_by(Domain.hostname))
        return app, [default_domain(ctx, app), *custom]


def get_domain(ctx: Context, user: User, app_ident: str, ident: str) -> tuple[App, Domain]:
    """By id or hostname."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        return app, _find(ctx, s, app, ident)


def add_domain(
    ctx: Context, user: User, app_ident: str, hostname: str, sni_endpoint: str | None = None
) -> tuple[App, Domain]:
    """Serve `hostname` for the app, over HTTPS with `sni_endpoint` (id or name) or with the
    app's certificate that covers it."""
    wanted = validate_hostname(hostname, ctx.settings.apps_domain)
    try:
        with ctx.store.session() as s:
            app = find_app(s, user, app_ident)
            _check_free(s, app, wanted)
            count = s.scalar(select(func.count(Domain.id)).where(Domain.app_id == app.id)) or 0
            if count >= MAX_DOMAINS:
                raise InvalidParams(f"An app may have at most {MAX_DOMAINS} custom domains.")
            domain = Domain(
                app_id=app.id,
                hostname=wanted,
                kind="custom",
                cname=f"{app.name}.{ctx.settings.apps_domain.lower().strip('.')}",
            )
            if sni_endpoint:
                domain.sni_endpoint_id = _covering(s, app, sni_endpoint, wanted).id
            s.add(domain)
            s.flush()
            match_certificates(s, app)
            s.flush()
    except IntegrityError:  # the same hostname added at the same moment
        raise InvalidParams(f"{wanted} is already in use by another app.") from None
    ctx.event(app.id, f"Add {wanted} domain by user {user.email}")
    ctx.wake()
    return app, domain


def update_domain(
    ctx: Context, user: User, app_ident: str, ident: str, sni_endpoint: str | None
) -> tuple[App, Domain]:
    """Serve a custom domain with the named SNI endpoint, or (None) with any that covers it."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        domain = _find(ctx, s, app, ident)
        if domain.kind == "heroku":
            raise InvalidParams(f"{domain.hostname} is served with Kapal's own certificate.")
        domain.sni_endpoint_id = (
            _covering(s, app, sni_endpoint, domain.hostname).id if sni_endpoint else None
        )
        s.flush()
        match_certificates(s, app)
        s.flush()
    ctx.wake()
    return app, domain


def remove_domain(ctx: Context, user: User, app_ident: str, ident: str) -> tuple[App, Domain]:
    """Stop serving a custom domain (by id or hostname) for the app."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        domain = _find(ctx, s, app, ident)
        if domain.kind == "heroku":
            raise InvalidParams(
                f"{domain.hostname} is the app's own hostname; it cannot be removed."
            )
        s.delete(domain)
    ctx.event(app.id, f"Remove {domain.hostname} domain by user {user.email}")
    ctx.wake()
    return app, domain


def endpoint_names(ctx: Context, domains: list[Domain]) -> dict[str, str]:
    """The names of the SNI endpoints these domains use, by id."""
    ids = {domain.sni_endpoint_id for domain in domains if domain.sni_endpoint_id}
    if not ids:
        return {}
    with ctx.store.session() as s:
        rows = s.execute(select(SniEndpoint.id, SniEndpoint.name).where(SniEndpoint.id.in_(ids)))
        return {endpoint_id: name for endpoint_id, name in rows}


def _covering(s: Session, app: App, ident: str, hostname: str) -> SniEndpoint:
    """The app's SNI endpoint `ident` (id or name), if its certificate covers `hostname`."""
    endpoint = find_endpoint(s, app, ident)
    if not describe_certificate(endpoint.certificate_chain).covers(hostname):
        raise InvalidParams(
            f"The certificate of SNI endpoint {endpoint.name} does not cover {hostname}."
        )
    return endpoint


def _check_free(s: Session, app: App, hostname: str) -> None:
    owner = s.scalar(select(Domain.app_id).where(Domain.hostname == hostname))
    if owner == app.id:
        raise InvalidParams(f"{hostname} is already a domain of {app.name}.")
    if owner is not None:
        raise InvalidParams(f"{hostname} is already in use by another app.")


def _find(ctx: Context, s: Session, app: App, ident: str) -> Domain:
    default = default_domain(ctx, app)
    wanted = ident.lower().rstrip(".")
    if wanted in (default.id, default.hostname):
        return default
    domain = s.scalar(
        select(Domain).where(
            Domain.app_id == app.id, (Domain.id == ident) | (Domain.hostname == wanted)
        )
    )
    if domain is None:
        raise NotFound(f"Couldn't find that domain ({ident}) on {app.name}.")
    return domain
