from __future__ import annotations

import base64
import stat
from pathlib import Path

from tests.unit.cli.cli_fakeapi import EMAIL, TOKEN, FakeApi, Kapal, assert_token, body

from kapal.cli import netrc

FRESH = "fresh-token"


def authorization(email: str = "new@example.com") -> dict:
    return {"id": "a1", "access_token": {"token": FRESH}, "user": {"id": "u2", "email": email}}


def saved_token(path: Path) -> str | None:
    entry = netrc.read_entry(path, "localhost")
    return entry.password if entry else None


def test_signup_with_options_saves_the_token(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/signup", authorization(), status=201)
    result = kapal("signup", "--email", "new@example.com", input="s3cret!\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Account created. Logged in as new@example.com\n"
    request = fake.one("POST", "/signup")
    assert body(request) == {"email": "new@example.com", "password": "s3cret!"}
    assert "authorization" not in request.headers
    entry = netrc.read_entry(kapal.netrc_path, "localhost")
    assert entry is not None and (entry.login, entry.password) == ("new@example.com", FRESH)


def test_login_reads_piped_stdin_and_keeps_other_netrc_entries(kapal: Kapal, fake: FakeApi) -> None:
    kapal.netrc_path.write_text("machine github.com login me password gh\n")
    fake.on("POST", "/oauth/authorizations", authorization(), status=201)
    result = kapal("login", input="new@example.com\npass word\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Logged in as new@example.com\n"
    request = fake.one("POST", "/oauth/authorizations")
    expected = base64.b64encode(b"new@example.com:pass word").decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert body(request)["description"].startswith("Kapal CLI login from ")
    text = kapal.netrc_path.read_text()
    assert text.startswith("machine github.com login me password gh\n")
    assert netrc.find(text, "localhost") is not None
    assert stat.S_IMODE(kapal.netrc_path.stat().st_mode) == 0o600


def test_login_prompts_on_a_terminal(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/oauth/authorizations", authorization(), status=201)
    result = kapal("login", input="new@example.com\nhidden\n", stdin_tty=True)
    assert result.exit_code == 0, result.output
    assert "Email: " in result.output and "Password: " in result.output
    assert "hidden" not in result.output
    expected = base64.b64encode(b"new@example.com:hidden").decode()
    assert fake.one("POST", "/oauth/authorizations").headers["authorization"] == (
        f"Basic {expected}"
    )


def test_signup_asks_for_the_password_twice_on_a_terminal(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/signup", authorization(), status=201)
    result = kapal("signup", input="new@example.com\npw\npw\n", stdin_tty=True)
    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation: " in result.output


def test_login_with_wrong_password(kapal: Kapal, fake: FakeApi) -> None:
    fake.error(
        "POST", "/oauth/authorizations", 401, "unauthorized", "Invalid credentials provided."
    )
    result = kapal("login", "--email", "a@example.com", input="bad\n")
    assert result.exit_code == 1
    assert result.stderr == " ▸    Invalid credentials provided.\n"
    assert saved_token(kapal.netrc_path) == TOKEN


def test_login_needs_both_values(kapal: Kapal) -> None:
    result = kapal("login", input="")
    assert result.exit_code == 1
    assert "An email and a password are required." in result.stderr


def test_logout_revokes_and_forgets(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("DELETE", "/oauth/authorizations/current", status=204)
    result = kapal("logout")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Logging out... done\n"
    assert_token(fake.one("DELETE", "/oauth/authorizations/current"))
    assert netrc.read_entry(kapal.netrc_path, "localhost") is None


def test_logout_with_an_already_revoked_token(kapal: Kapal, fake: FakeApi) -> None:
    fake.error("DELETE", "/oauth/authorizations/current", 401, "unauthorized", "Invalid.")
    result = kapal("logout")
    assert result.exit_code == 0, result.output
    assert netrc.read_entry(kapal.netrc_path, "localhost") is None


def test_logout_when_not_logged_in(kapal: Kapal, fake: FakeApi) -> None:
    kapal.netrc_path.unlink()
    result = kapal("logout")
    assert result.exit_code == 0
    assert result.stdout == "Not logged in.\n"
    assert fake.requests == []


def test_whoami(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/account", {"id": "u1", "email": EMAIL})
    result = kapal("whoami")
    assert result.exit_code == 0
    assert result.stdout == f"{EMAIL}\n"
    assert_token(fake.one("GET", "/account"))


def test_api_key_overrides_netrc(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/account", {"id": "u1", "email": EMAIL})
    result = kapal("whoami", env={"KAPAL_API_KEY": "env-key"})
    assert result.exit_code == 0
    assert_token(fake.one("GET", "/account"), "env-key")
    assert kapal("auth:token", env={"KAPAL_API_KEY": "env-key"}).stdout == "env-key\n"


def test_auth_token(kapal: Kapal) -> None:
    result = kapal("auth:token")
    assert (result.exit_code, result.stdout) == (0, f"{TOKEN}\n")


def test_netrc_entry_follows_the_api_host(kapal: Kapal, fake: FakeApi, home: Path) -> None:
    fake.on("GET", "/account", {"id": "u1", "email": EMAIL})
    result = kapal("whoami", env={"KAPAL_API_URL": "http://127.0.0.1:5000"})
    assert result.exit_code == 1
    assert result.stderr == " ▸    Not logged in. Run kapal login (or kapal signup).\n"
    assert fake.requests == []


def test_netrc_defaults_to_home(kapal: Kapal, fake: FakeApi, home: Path) -> None:
    fake.on("POST", "/oauth/authorizations", authorization(), status=201)
    result = kapal("login", "--email", "new@example.com", input="x\n", env={"NETRC": ""})
    assert result.exit_code == 0, result.output
    assert saved_token(home / ".netrc") == FRESH


def test_invalid_token_says_to_log_in(kapal: Kapal, fake: FakeApi) -> None:
    fake.error("GET", "/account", 401, "unauthorized", "Invalid credentials provided.")
    result = kapal("whoami")
    assert result.exit_code == 1
    assert result.stderr == " ▸    Invalid credentials. Run kapal login.\n"
