"""Third-party add-on providers: operators register, change and remove them; everyone may
create add-ons of any registered provider (kapal.services.addons does, through a
PartnerProvisioner built here).

Operators are the accounts listed in KAPAL_OPERATORS, or when that is unset the account
created first on this Kapal (like Gitea's first user).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kapal.addons.catalog import SERVICES, Service, find_service
from kapal.addons.errors import ProvisionError
from kapal.addons.manifest import (
    Manifest,
    PlanSpec,
    check_manifest,
    check_password,
    config_prefix,
    partner_service,
)
from kapal.addons.partner import AddonRef, Endpoint, PartnerProvisioner
from kapal.domain.errors import Conflict, Forbidden, NotFound
from kapal.services.context import Context
from kapal.store.models import Addon, AddonProvider, User

log = logging.getLogger(__name__)

NOT_FOUND = "Couldn't find that add-on provider."
FORBIDDEN = (
    "Only operators may manage add-on providers: the accounts in KAPAL_OPERATORS, or the "
    "account created first when it is unset."
)


def is_operator(ctx: Context, s: Session, user: User) -> bool:
    if ctx.settings.operators:
        return user.email.lower() in ctx.settings.operators
    first = s.scalar(select(User.id).order_by(User.created_at, User.id).limit(1))
    return first == user.id


def _require_operator(ctx: Context, s: Session, user: User) -> None:
    if not is_operator(ctx, s, user):
        raise Forbidden(FORBIDDEN)


def _manifest(row: AddonProvider) -> Manifest:
    plans = tuple(PlanSpec(p["name"], p.get("description", "")) for p in row.plans)
    return Manifest(row.id, row.name, row.base_url, plans, tuple(row.config_vars))


def _find(s: Session, ident: str) -> AddonProvider:
    row = s.get(AddonProvider, ident)
    if row is None:
        raise NotFound(NOT_FOUND)
    return row


# --- the catalog's view of them ---------------------------------------------------------------


def partner_services(s: Session) -> tuple[Service, ...]:
    """Every registered provider as a catalog service, by id."""
    rows = s.scalars(select(AddonProvider).order_by(AddonProvider.id))
    return tuple(partner_service(_manifest(row)) for row in rows)


def partners_of(s: Session, service_name: str) -> tuple[Service, ...]:
    """The registered provider an add-on row's service names, if it is one (else ())."""
    if find_service(service_name) is not None:
        return ()
    row = s.get(AddonProvider, service_name)
    return (partner_service(_manifest(row)),) if row is not None else ()


def catalog(ctx: Context) -> tuple[Service, ...]:
    """Kapal's own services, then the registered providers'."""
    with ctx.store.snapshot() as s:
        return (*SERVICES, *partner_services(s))


def partner_provisioner(
    ctx: Context,
    service: str,
    addon_id: str,
    *,
    options: Mapping[str, Any] | None = None,
    provider_id: str = "",
) -> PartnerProvisioner:
    """The provisioner of one add-on (Kapal's id `addon_id`) of the provider `service`."""
    with ctx.store.snapshot() as s:
        row = s.get(AddonProvider, service)
        if row is None:
            raise ProvisionError(f"The add-on provider {service} is not registered any more.")
        endpoint = Endpoint(
            id=row.id,
            base_url=row.base_url,
            password=row.password,
            prefix=config_prefix(row.id, row.config_vars),
            config_vars=tuple(row.config_vars),
        )
    addon = AddonRef(
        uuid=addon_id,
        callback_url=f"{ctx.settings.api_url}/addons/{addon_id}",
        options=dict(options or {}),
        provider_id=provider_id,
    )
    return PartnerProvisioner(endpoint, addon, timeout=ctx.settings.partner_timeout)


# --- what operators do ------------------------------------------------------------------------


def list_providers(ctx: Context, user: User) -> list[AddonProvider]:
    with ctx.store.snapshot() as s:
        _require_operator(ctx, s, user)
        return list(s.scalars(select(AddonProvider).order_by(AddonProvider.id)))


def get_provider(ctx: Context, user: User, ident: str) -> AddonProvider:
    with ctx.store.snapshot() as s:
        _require_operator(ctx, s, user)
        return _find(s, ident)


def add_provider(
    ctx: Context,
    user: User,
    *,
    ident: str,
    name: str | None,
    base_url: str,
    password: str,
    plans: Sequence[PlanSpec],
    config_vars: Sequence[str] = (),
) -> AddonProvider:
    """Register a provider; its id is the add-on service's name."""
    manifest = check_manifest(ident, name, base_url, plans, config_vars)
    check_password(password)
    taken = Conflict(f"An add-on provider {manifest.id} is already registered.")
    try:
        with ctx.store.session() as s:
            _require_operator(ctx, s, user)
            if s.get(AddonProvider, manifest.id) is not None:
                raise taken
            row = AddonProvider(
                id=manifest.id,
                name=manifest.name,
                base_url=manifest.base_url,
                password=password,
                plans=_plans_json(manifest),
                config_vars=list(manifest.config_vars),
                created_by=user.id,
            )
            s.add(row)
    except IntegrityError:  # registered at the same moment
        raise taken from None
    log.info("add-on provider %s registered by %s", manifest.id, user.email)
    return row


def update_provider(
    ctx: Context,
    user: User,
    ident: str,
    *,
    name: str | None = None,
    base_url: str | None = None,
    password: str | None = None,
    plans: Sequence[PlanSpec] | None = None,
    config_vars: Sequence[str] | None = None,
) -> AddonProvider:
    """Change what is given; plans that add-ons are on must stay."""
    if password is not None:
        check_password(password)
    with ctx.store.session() as s:
        _require_operator(ctx, s, user)
        row = _find(s, ident)
        old = _manifest(row)
        manifest = check_manifest(
            row.id,
            name if name is not None else old.name,
            base_url if base_url is not None else old.base_url,
            plans if plans is not None else old.plans,
            config_vars if config_vars is not None else old.config_vars,
        )
        kept = {p.name for p in manifest.plans}
        in_use = sorted(
            s.scalars(
                select(Addon.plan)
                .where(Addon.service == row.id, Addon.plan.not_in(kept))
                .distinct()
            )
        )
        if in_use:
            raise Conflict(
                f"Add-ons of {row.id} are on the plan(s) {', '.join(in_use)}; keep them in "
                "the plans or change those add-ons' plans first."
            )
        row.name = manifest.name
        row.base_url = manifest.base_url
        row.plans = _plans_json(manifest)
        row.config_vars = list(manifest.config_vars)
        if password is not None:
            row.password = password
    log.info("add-on provider %s changed by %s", ident, user.email)
    return row


def remove_provider(ctx: Context, user: User, ident: str) -> AddonProvider:
    """Forget a provider that no add-on uses any more (Kapal needs it to remove them)."""
    with ctx.store.session() as s:
        _require_operator(ctx, s, user)
        row = _find(s, ident)
        count = s.scalar(select(func.count()).select_from(Addon).where(Addon.service == row.id))
        if count:
            raise Conflict(
                f"{row.id} still has {count} add-on(s); destroy them first "
                "(kapal addons:destroy), as removing them needs the provider."
            )
        s.delete(row)
    log.info("add-on provider %s removed by %s", ident, user.email)
    return row


def _plans_json(manifest: Manifest) -> list[dict[str, str]]:
    return [{"name": p.name, "description": p.description} for p in manifest.plans]
