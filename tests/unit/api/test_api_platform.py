"""`GET /platform/tls`: Kapal's ports and local CA, public, for `kapal heroku-env`."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kapal.router.localcerts import platform_certificate
from kapal.services.context import Context


def test_the_ports_and_the_ca_need_no_token(client: TestClient, ctx: Context) -> None:
    assert client.get("/platform/tls").status_code == 404  # before `kapal up` made the CA
    platform_certificate(ctx.settings.tls_dir)
    response = client.get("/platform/tls")
    assert response.status_code == 200
    settings = ctx.settings
    assert response.json() == {
        "ports": {
            "api": settings.api_port,
            "api_tls": settings.api_tls_port,
            "logs": settings.logs_port,
            "rendezvous": settings.rendezvous_port,
        },
        "ca_file": str(settings.tls_dir / "ca.pem"),
        "ca_certificate": (settings.tls_dir / "ca.pem").read_text(),
    }
    assert "PRIVATE KEY" not in response.text
