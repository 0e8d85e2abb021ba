"""`GET /platform/tls`: what a client on this machine needs to reach Kapal's TLS endpoints (the
HTTPS port for git, the rendezvous) and to trust them: the ports and the local CA's
certificate. `kapal heroku-env` reads it. Public facts only, so no token is asked for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from kapal.api.deps import CtxDep
from kapal.domain.errors import NotFound

router = APIRouter()


@router.get("/platform/tls")
async def platform_tls(ctx: CtxDep) -> dict[str, Any]:
    settings = ctx.settings
    ca_file = settings.tls_dir / "ca.pem"
    try:
        certificate = await run_in_threadpool(ca_file.read_text)
    except FileNotFoundError:  # `kapal up` makes it before the API starts
        raise NotFound("Kapal's local CA has not been made yet.") from None
    return {
        "ports": {
            "api": settings.api_port,
            "api_tls": settings.api_tls_port,
            "logs": settings.logs_port,
            "rendezvous": settings.rendezvous_port,
        },
        "ca_file": str(ca_file),
        "ca_certificate": certificate,
    }
