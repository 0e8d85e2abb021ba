"""/apps/{app}/sni-endpoints: an app's TLS certificates for its custom domains. The private key
is taken, never given back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from kapal.api.deps import CtxDep, UserDep
from kapal.api.serializers import app_ref, ts
from kapal.services import certificates as certificates_service
from kapal.services.certificates import Endpoint
from kapal.store.models import App

router = APIRouter()


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    certificate_chain: str
    private_key: str


def endpoint_json(app: App, endpoint: Endpoint) -> dict[str, Any]:
    row, info = endpoint.row, endpoint.info
    return {
        "id": row.id,
        "name": row.name,
        "display_name": None,
        "app": app_ref(app),
        "certificate_chain": row.certificate_chain,
        "domains": [domain.id for domain in endpoint.domains],
        "ssl_cert": {
            "id": row.id,
            "cert_domains": list(info.cert_domains),
            "subject": info.subject,
            "issuer": info.issuer,
            "starts_at": ts(info.starts_at),
            "expires_at": ts(info.expires_at),
            # Heroku's field names, question marks included.
            "self_signed?": info.self_signed,
            "ca_signed?": not info.self_signed,
            "fingerprint": info.fingerprint,
        },
        "created_at": ts(row.created_at),
        "updated_at": ts(row.updated_at),
    }


@router.get("/apps/{app}/sni-endpoints")
def list_endpoints(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    row, endpoints = certificates_service.list_endpoints(ctx, user, app)
    return [endpoint_json(row, endpoint) for endpoint in endpoints]


@router.post("/apps/{app}/sni-endpoints", status_code=201)
def create_endpoint(app: str, body: EndpointBody, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row, endpoint = certificates_service.create_endpoint(
        ctx, user, app, body.certificate_chain, body.private_key
    )
    return endpoint_json(row, endpoint)


@router.get("/apps/{app}/sni-endpoints/{ident}")
def get_endpoint(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row, endpoint = certificates_service.get_endpoint(ctx, user, app, ident)
    return endpoint_json(row, endpoint)


@router.patch("/apps/{app}/sni-endpoints/{ident}")
def update_endpoint(
    app: str, ident: str, body: EndpointBody, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    row, endpoint = certificates_service.update_endpoint(
        ctx, user, app, ident, body.certificate_chain, body.private_key
    )
    return endpoint_json(row, endpoint)


@router.delete("/apps/{app}/sni-endpoints/{ident}")
def delete_endpoint(app: str, ident: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    row, endpoint = certificates_service.delete_endpoint(ctx, user, app, ident)
    return endpoint_json(row, endpoint)
