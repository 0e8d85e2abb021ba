"""/apps/{app}/domains: list (with Range paging, as Heroku's CLI asks for it), add, info,
update (its SNI endpoint), remove."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict

from kapal.api.deps import CtxDep, UserDep
from kapal.api.ranges import parse_range
from kapal.api.serializers import app_ref, ts
from kapal.services import domains as domains_service
from kapal.services.context import Context
from kapal.store.models import App, Domain

router = APIRouter()

_START = re.compile(r"^\s*\w+\s*(\]?)\s*(.*?)\s*\.\.")


class DomainCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hostname: str
    sni_endpoint: str | None = None


def domain_json(app: App, domain: Domain, endpoint_name: str | None = None) -> dict[str, Any]:
    endpoint = (
        {"id": domain.sni_endpoint_id, "name": endpoint_name} if domain.sni_endpoint_id else None
    )
    return {
        "id": domain.id,
        "app": app_ref(app),
        "hostname": domain.hostname,
        "kind": domain.kind,
        "cname": domain.cname,
        # The router serves a domain as soon as it is added; DNS is the user's own.
        "status": "succeeded",
        "acm_status": None,
        "acm_status_reason": None,
        "sni_endpoint": endpoint,
        "created_at": ts(domain.created_at),
        "updated_at": ts(domain.updated_at),
    }


def _json(ctx: Context, app: App, domain: Domain) -> dict[str, Any]:
    names = domains_service.endpoint_names(ctx, [domain])
    return domain_json(app, domain, names.get(domain.sni_endpoint_id or ""))


@router.get("/apps/{app}/domains")
def list_domains(
    app: str,
    response: Response,
    ctx: CtxDep,
    user: UserDep,
    range_: str | None = Header(None, alias="Range"),
) -> list[dict[str, Any]]:
    wanted = parse_range(range_, ("id", "hostname"), "hostname")
    response.headers["Accept-Ranges"] = "id, hostname"
    row, domains = domains_service.list_domains(ctx, user, app)
    domains.sort(key=lambda d: str(getattr(d, wanted.field)), reverse=wanted.descending)
    domains = _from_start(domains, wanted.field, range_ or "", wanted.descending)
    size = max(wanted.max, 1)
    page = domains[:size]
    if len(domains) > len(page):
        response.status_code = 206
        order = "desc" if wanted.descending else "asc"
        last = getattr(page[-1], wanted.field)
        response.headers["Next-Range"] = f"{wanted.field} ]{last}..; order={order}, max={size}"
    names = domains_service.endpoint_names(ctx, page)
    return [domain_json(row, d, names.get(d.sni_endpoint_id or "")) for d in page]


def _from_start(domains: list[Domain], field: str, header: str, descending: bool) -> list[Domain]:
    """The domains from the Range's start on (after it, for `]start..`: a Next-Range)."""
    match = _START.match(header)
    if match is None or not match.group(2):
        return domains
    exclusive, start = match.group(1) == "]", match.group(2)

    def kept(domain: Domain) -> bool:
        value = str(getattr(domain, field))
        if value == start:
            return not exclusive
        return value < start if descending else value > start

    return [domain for domain in domains if kept(domain)]


@router.post("/apps/{app}/domains", status_code=201)
def add_domain(app: str, body: DomainCreate, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row, domain = domains_service.add_domain(ctx, user, app, body.hostname, body.sni_endpoint)
    return _json(ctx, row, domain)


@router.get("/apps/{app}/domains/{ident}")
def get_domain(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row, domain = domains_service.get_domain(ctx, user, app, ident)
    return _json(ctx, row, domain)


class DomainUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sni_endpoint: str | None = None


@router.patch("/apps/{app}/domains/{ident}")
def update_domain(
    app: str, ident: str, body: DomainUpdate, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    row, domain = domains_service.update_domain(ctx, user, app, ident, body.sni_endpoint)
    return _json(ctx, row, domain)


@router.delete("/apps/{app}/domains/{ident}")
def remove_domain(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row, domain = domains_service.remove_domain(ctx, user, app, ident)
    return domain_json(row, domain)
