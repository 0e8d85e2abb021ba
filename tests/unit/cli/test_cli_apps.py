from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from tests.conftest import free_port
from tests.unit.cli.cli_fakeapi import API, EMAIL, FakeApi, Kapal, app_json, assert_token, body

from kapal.cli import gitremote
from kapal.cli.context import CliEnv
from kapal.cli.main import build_cli


@pytest.fixture
def repo(kapal: Kapal) -> Path:
    path = kapal.home / "myapp"
    path.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=path, env=kapal.environ(), check=True, timeout=30)
    return path


def remotes(kapal: Kapal, repo: Path) -> dict[str, str]:
    return gitremote.remotes(repo, kapal.environ())


def test_apps_lists_names_sorted(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/account", {"id": "u1", "email": EMAIL})
    fake.on("GET", "/apps", [app_json("zeta"), app_json("alpha")])
    result = kapal("apps")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"=== {EMAIL} Apps\n\nalpha\nzeta\n"
    assert_token(fake.one("GET", "/apps"))


def test_apps_none(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/account", {"id": "u1", "email": EMAIL})
    fake.on("GET", "/apps", [])
    assert kapal("apps").stdout == "You have no apps.\n"


def test_create_outside_a_repository(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/apps", app_json("serene-caverns-82714"), status=201)
    result = kapal("create")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Creating app... done, ⬢ serene-caverns-82714\n"
    assert result.stdout == (
        "http://serene-caverns-82714.localhost:8080/ | "
        "http://localhost:5000/serene-caverns-82714.git\n"
    )
    request = fake.one("POST", "/apps")
    assert_token(request)
    assert body(request) == {}


def test_create_named_adds_the_git_remote(kapal: Kapal, fake: FakeApi, repo: Path) -> None:
    fake.on("POST", "/apps", app_json("demo"), status=201)
    result = kapal("create", "demo", cwd=repo)
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", "/apps")) == {"name": "demo"}
    assert "Git remote kapal added" in result.stderr
    assert remotes(kapal, repo) == {"kapal": f"{API}/demo.git"}


def test_create_with_other_remote_name_or_none(kapal: Kapal, fake: FakeApi, repo: Path) -> None:
    fake.on("POST", "/apps", app_json("demo"), status=201)
    assert kapal("create", "demo", "--remote", "staging", cwd=repo).exit_code == 0
    assert remotes(kapal, repo) == {"staging": f"{API}/demo.git"}
    assert kapal("apps:create", "demo", "--no-remote", cwd=repo).exit_code == 0
    assert remotes(kapal, repo) == {"staging": f"{API}/demo.git"}


def test_create_keeps_an_existing_remote(kapal: Kapal, fake: FakeApi, repo: Path) -> None:
    gitremote.add_remote(repo, kapal.environ(), "kapal", f"{API}/old.git")
    fake.on("POST", "/apps", app_json("demo"), status=201)
    result = kapal("create", "demo", cwd=repo)
    assert result.exit_code == 0, result.output
    assert "Git remote kapal already points to" in result.stderr
    assert "kapal git:remote -a demo" in result.stderr
    assert remotes(kapal, repo) == {"kapal": f"{API}/old.git"}


def test_create_rejected_name(kapal: Kapal, fake: FakeApi) -> None:
    fake.error("POST", "/apps", 422, "invalid_params", "Name demo is already taken.")
    result = kapal("create", "demo")
    assert result.exit_code == 1
    assert result.stderr == "Creating app... !\n ▸    Name demo is already taken.\n"


def test_app_comes_from_the_kapal_remote(kapal: Kapal, fake: FakeApi, repo: Path) -> None:
    gitremote.add_remote(repo, kapal.environ(), "heroku", "https://git.heroku.com/old.git")
    gitremote.add_remote(repo, kapal.environ(), "kapal", f"{API}/demo.git")
    fake.on("GET", "/apps/demo", app_json("demo"))
    result = kapal("open", "--print", cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stdout == "Opening http://demo.localhost:8080/...\n"


def test_app_from_heroku_remote_then_from_a_flag(kapal: Kapal, fake: FakeApi, repo: Path) -> None:
    gitremote.add_remote(repo, kapal.environ(), "heroku", "https://git.heroku.com/old.git")
    fake.on("GET", "/apps/old", app_json("old"))
    fake.on("GET", "/apps/other", app_json("other"))
    assert kapal("open", "--print", cwd=repo).exit_code == 0
    assert kapal("open", "--print", "-a", "other", cwd=repo).exit_code == 0
    assert [r.url.path for r in fake.requests] == ["/apps/old", "/apps/other"]


def test_no_app_anywhere(kapal: Kapal, fake: FakeApi, repo: Path) -> None:
    result = kapal("open", cwd=repo)
    assert result.exit_code == 1
    assert result.stderr == " ▸    No app specified. Use -a APP.\n"
    assert fake.requests == []


def test_open_path_and_browser_only_with_a_display(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo", app_json("demo"))
    result = kapal("open", "-a", "demo", "/db/", stdout_tty=True, env={"DISPLAY": ":0"})
    assert result.stdout == "Opening http://demo.localhost:8080/db/...\n"
    assert kapal.opened == ["http://demo.localhost:8080/db/"]
    kapal("open", "-a", "demo", stdout_tty=False, env={"DISPLAY": ":0"})
    kapal("open", "-a", "demo", stdout_tty=True, env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    kapal("open", "-a", "demo", "--print", stdout_tty=True, env={"DISPLAY": ":0"})
    assert kapal.opened == ["http://demo.localhost:8080/db/"]


def test_info(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo", app_json("demo"))
    dyno = {"name": "web.1", "type": "web"}
    fake.on("GET", "/apps/demo/dynos", [dyno, {**dyno, "name": "web.2"}, {"type": "worker"}])
    fake.on("GET", "/apps/demo/addons", [{"id": "a", "name": "pg-1", "plan": {"name": "pg:dev"}}])
    result = kapal("info", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== demo\n\n"
        "Addons:      pg:dev\n"
        "Dynos:       web: 2 worker: 1\n"
        "Git URL:     http://localhost:5000/demo.git\n"
        f"Owner:       {EMAIL}\n"
        "Region:      local\n"
        "Released At: 2026/11/26 13:39:22 +0000\n"
        "Stack:       kapal-24\n"
        "Web URL:     http://demo.localhost:8080/\n"
    )


def test_info_without_addon_support(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo", app_json("demo", released_at=None))
    fake.on("GET", "/apps/demo/dynos", [])
    result = kapal("apps:info", "demo")
    assert result.exit_code == 0, result.output
    assert "Addons" not in result.stdout and "Released At" not in result.stdout


def test_missing_app(kapal: Kapal, fake: FakeApi) -> None:
    fake.error("GET", "/apps/nope", 404, "not_found", "Couldn't find that app.")
    result = kapal("apps:info", "-a", "nope")
    assert result.exit_code == 1
    assert result.stderr == " ▸    Couldn't find that app.\n"


def test_destroy_with_confirm_removes_the_remote(kapal: Kapal, fake: FakeApi, repo: Path) -> None:
    gitremote.add_remote(repo, kapal.environ(), "kapal", f"{API}/demo.git")
    gitremote.add_remote(repo, kapal.environ(), "origin", "https://github.com/me/demo.git")
    fake.on("GET", "/apps/demo", app_json("demo"))
    fake.on("DELETE", "/apps/demo", app_json("demo"))
    result = kapal("apps:destroy", "--confirm", "demo", cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "Destroying ⬢ demo (including all add-ons)... done\nGit remote kapal removed\n"
    )
    assert_token(fake.one("DELETE", "/apps/demo"))
    assert remotes(kapal, repo) == {"origin": "https://github.com/me/demo.git"}


def test_destroy_refuses_a_wrong_confirmation(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("destroy", "-a", "demo", "--confirm", "other")
    assert result.exit_code == 1
    assert "did not match demo" in result.stderr
    assert fake.requests == []


def test_destroy_needs_confirm_when_not_interactive(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("destroy", "-a", "demo")
    assert result.exit_code == 1
    assert "Re-run with --confirm demo" in result.stderr
    assert fake.requests == []


def test_destroy_asks_on_a_terminal(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo", app_json("demo"))
    fake.on("DELETE", "/apps/demo", app_json("demo"))
    wrong = kapal("destroy", "demo", input="demx\n", stdin_tty=True)
    assert wrong.exit_code == 1
    assert fake.sent("DELETE", "/apps/demo") == []
    right = kapal("destroy", "demo", input="demo\n", stdin_tty=True)
    assert right.exit_code == 0, right.output
    assert "To proceed, type demo" in right.stderr
    assert len(fake.sent("DELETE", "/apps/demo")) == 1


def test_git_remote(kapal: Kapal, fake: FakeApi, repo: Path) -> None:
    fake.on("GET", "/apps/demo", app_json("demo"))
    gitremote.add_remote(repo, kapal.environ(), "kapal", f"{API}/old.git")
    result = kapal("git:remote", "-a", "demo", cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"set git remote kapal to {API}/demo.git\n"
    assert kapal("git:remote", "-a", "demo", "-r", "prod", cwd=repo).exit_code == 0
    assert remotes(kapal, repo) == {"kapal": f"{API}/demo.git", "prod": f"{API}/demo.git"}


def test_git_remote_outside_a_repository(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("git:remote", "-a", "demo")
    assert result.exit_code == 1
    assert "Not in a git repository" in result.stderr


def test_connection_refused_names_the_setting(kapal: Kapal, fake: FakeApi) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    fake.on("GET", "/apps/demo", handler=refuse)
    result = kapal("open", "-a", "demo")
    assert result.exit_code == 1
    assert "Could not connect to the Kapal API at http://localhost:5000" in result.stderr
    assert "KAPAL_API_URL" in result.stderr and "make up" in result.stderr


def test_real_connection_refused(kapal: Kapal) -> None:
    """No fake: the real transport against a port nothing listens on."""
    port = free_port()
    environ = kapal.environ(KAPAL_API_URL=f"http://127.0.0.1:{port}", KAPAL_API_KEY="k")
    env = CliEnv(environ=environ, cwd=kapal.home)
    result = CliRunner().invoke(build_cli(), ["apps"], obj=env)
    assert result.exit_code == 1
    assert f"Could not connect to the Kapal API at http://127.0.0.1:{port}" in result.stderr
