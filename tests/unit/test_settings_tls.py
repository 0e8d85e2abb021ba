"""KAPAL_ROUTER_TLS_PORT and the places of the router's certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapal.settings import Settings


def test_the_https_port_from_the_environment(tmp_path: Path) -> None:
    base = {"KAPAL_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(base).router_tls_port == 8443
    settings = Settings.from_env({**base, "KAPAL_ROUTER_TLS_PORT": "9443"})
    assert settings.router_tls_port == 9443
    assert settings.https_web_url("demo") == "https://demo.localhost:9443/"
    assert settings.tls_dir == tmp_path / "tls"
    assert Settings.from_env({**base, "KAPAL_ROUTER_TLS_PORT": "0"}).router_tls_port == 0


@pytest.mark.parametrize("bad", ["-1", "65536", "https", "", "8443.5"])
def test_a_port_that_is_no_port_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="KAPAL_ROUTER_TLS_PORT must be a port number"):
        Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path), "KAPAL_ROUTER_TLS_PORT": bad})
