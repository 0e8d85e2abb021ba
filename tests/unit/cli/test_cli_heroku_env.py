"""`kapal heroku-env`: the lines that point the official Heroku CLI at this Kapal."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from tests.unit.cli.cli_fakeapi import FakeApi, Kapal

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def serve_tls(fake: FakeApi, ca_file: Path, certificate: str = PEM) -> None:
    ports = {"api": 5000, "api_tls": 5443, "logs": 5001, "rendezvous": 5002}
    body = {"ports": ports, "ca_file": str(ca_file), "ca_certificate": certificate}
    fake.on("GET", "/platform/tls", body)


def exports(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(value)[0]
    return found


def test_the_lines_point_the_heroku_cli_at_kapal_and_keep_the_token_here(
    kapal: Kapal, fake: FakeApi, tmp_path: Path
) -> None:
    ca_file = tmp_path / "data dir" / "ca.pem"
    ca_file.parent.mkdir()
    ca_file.write_text(PEM)
    serve_tls(fake, ca_file)
    result = kapal("heroku-env")
    assert result.exit_code == 0, result.output
    assert exports(result.stdout) == {
        "HEROKU_HOST": "http://localhost:5000",
        "HEROKU_PARTICLEBOARD_URL": "http://localhost:5000",
        "HEROKU_GIT_HOST": "localhost:5443",
        "HEROKU_DATA_HOST": "localhost",
        "DISABLE_TELEMETRY": "true",
        "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
        "HEROKU_DISABLE_AUTOUPDATE": "1",
        "NODE_EXTRA_CA_CERTS": str(ca_file),
    }
    git_line = result.stdout.splitlines()[-1]
    assert shlex.split(git_line) == [
        "git",
        "config",
        "--global",
        "http.https://localhost:5443/.sslCAInfo",
        str(ca_file),
    ]
    assert "authorization" not in fake.one("GET", "/platform/tls").headers  # public facts


def test_the_lines_work_in_a_shell(kapal: Kapal, fake: FakeApi, tmp_path: Path) -> None:
    ca_file = tmp_path / "it's here" / "ca.pem"
    ca_file.parent.mkdir()
    ca_file.write_text(PEM)
    serve_tls(fake, ca_file)
    script = kapal("heroku-env").stdout + '\nprintf %s "$NODE_EXTRA_CA_CERTS"'
    home = {"HOME": str(kapal.home), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"}
    shell = subprocess.run(["sh", "-c", script], env=home, capture_output=True, text=True)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout == str(ca_file)
    git = ["git", "config", "--global", "http.https://localhost:5443/.sslCAInfo"]
    configured = subprocess.run(git, env=home, capture_output=True, text=True)
    assert configured.stdout.strip() == str(ca_file)


def test_a_ca_file_this_user_cannot_read_is_copied_to_the_config_directory(
    kapal: Kapal, fake: FakeApi, tmp_path: Path
) -> None:
    serve_tls(fake, tmp_path / "elsewhere" / "ca.pem")
    result = kapal("heroku-env", env={"XDG_CONFIG_HOME": str(tmp_path / "config")})
    assert result.exit_code == 0, result.output
    copy = tmp_path / "config" / "kapal" / "ca-localhost-5000.pem"
    assert exports(result.stdout)["NODE_EXTRA_CA_CERTS"] == str(copy)
    assert copy.read_text() == PEM


def test_a_kapal_elsewhere_needs_its_ports_forwarded_first(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("heroku-env", env={"KAPAL_API_URL": "http://kapal.example:5000"})
    assert result.exit_code == 1
    assert "only sends its token to localhost or 127.0.0.1" in result.stderr
    assert "ssh -L 5000:localhost:5000" in result.stderr
    assert fake.sent("GET", "/platform/tls") == []


def test_cas_named_before_are_kept_beside_kapals(
    kapal: Kapal, fake: FakeApi, tmp_path: Path
) -> None:
    """GIT_SSL_CAINFO overrides git's per-URL setting, and NODE_EXTRA_CA_CERTS holds one file:
    each gets a bundle of the CAs it named and Kapal's, and evaluating twice changes nothing."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(PEM)
    serve_tls(fake, ca_file)
    system = tmp_path / "system.pem"
    system.write_text("-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----\n")
    config = tmp_path / "config"
    before = {
        "XDG_CONFIG_HOME": str(config),
        "GIT_SSL_CAINFO": str(system),
        "NODE_EXTRA_CA_CERTS": str(system),
    }
    printed = exports(kapal("heroku-env", env=before).stdout)
    git_bundle = Path(printed["GIT_SSL_CAINFO"])
    node_bundle = Path(printed["NODE_EXTRA_CA_CERTS"])
    for bundle in (git_bundle, node_bundle):
        assert bundle.parent == config / "kapal"
        assert bundle.read_text() == system.read_text() + PEM
    again = exports(kapal("heroku-env", env={**before, **printed}).stdout)
    assert again == printed
    assert git_bundle.read_text() == system.read_text() + PEM
    assert "GIT_SSL_CAINFO" not in exports(kapal("heroku-env", env={}).stdout)


def test_an_unreadable_ca_variable_is_reported(kapal: Kapal, fake: FakeApi, tmp_path: Path) -> None:
    serve_tls(fake, tmp_path / "ca.pem")
    (tmp_path / "ca.pem").write_text(PEM)
    missing = str(tmp_path / "gone.pem")
    result = kapal("heroku-env", env={"GIT_SSL_CAINFO": missing})
    assert result.exit_code == 1
    assert f"GIT_SSL_CAINFO names {missing}, which cannot be read" in result.stderr
