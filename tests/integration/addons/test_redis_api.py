"""kapal-redis through the real API and CLI: addons:create sets REDIS_URL and releases,
redis:info, redis:maxmemory and redis:cli work, destroy stops the server, a crash mid-provision
leaves nothing behind."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.integration.addons.kapal_cli import Run, kapal_cli
from tests.integration.addons.redis_check import alive, config_get, connect, server_pid

from kapal.addons.redis import RedisProvisioner
from kapal.services import addons
from kapal.services.apps import create_app
from kapal.services.auth import login, signup
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import Addon, App, User

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def ctx(open_dir: Path) -> Iterator[Context]:
    """The data directory is one the kapal-redis user can pass through (as root)."""
    settings = Settings(data_dir=open_dir, database_url=f"sqlite:///{open_dir}/state/k.db")
    (open_dir / "state").mkdir()
    context = Context.create(settings)
    yield context
    provisioner = RedisProvisioner(settings)
    for name in provisioner.names():
        provisioner.deprovision(name)
    context.close()


@pytest.fixture
def app(ctx: Context, user: User) -> App:
    return create_app(ctx, user, "redis-app")


@pytest.fixture
def http(api_url: str, token: str, app: App) -> Iterator[httpx.Client]:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.heroku+json; version=3",
    }
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture
def provisioner(ctx: Context) -> RedisProvisioner:
    return RedisProvisioner(ctx.settings)


def test_create_sets_redis_url_releases_and_destroy_stops_the_server(
    http: httpx.Client, provisioner: RedisProvisioner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # `heroku addons:create heroku-redis:premium-0` sends exactly this body.
    created = http.post(
        "/apps/redis-app/addons",
        json={"attachment": {}, "config": {}, "plan": {"name": "heroku-redis:premium-0"}},
    )
    assert created.status_code == 201, created.text
    addon = created.json()
    assert addon["name"].startswith("redis-")
    assert addon["plan"]["name"] == "heroku-redis:premium-0"
    assert addon["config_vars"] == ["REDIS_URL"]
    assert addon["state"] == "provisioned"

    url = http.get("/apps/redis-app/config-vars").json()["REDIS_URL"]
    with connect(url) as conn:
        assert conn.call("SET", "k", "v") == "OK"
    releases = http.get("/apps/redis-app/releases").json()
    assert releases[-1]["description"] == f"Attach REDIS (@ref:{addon['name']})"
    password = url.split(":")[2].split("@")[0]
    assert password not in caplog.text

    second = http.post("/apps/redis-app/addons", json={"plan": "kapal-redis"}).json()
    assert second["config_vars"][0].startswith("KAPAL_REDIS_")
    assert second["config_vars"][0].endswith("_URL")

    pid = server_pid(provisioner, addon["name"])
    deleted = http.delete(f"/apps/redis-app/addons/{addon['id']}")
    assert deleted.status_code == 200, deleted.text
    assert not alive(pid)
    assert not (provisioner.root / addon["name"]).exists()
    assert "REDIS_URL" not in http.get("/apps/redis-app/config-vars").json()
    assert [a["name"] for a in http.get("/apps/redis-app/addons").json()] == [second["name"]]


def test_info_and_maxmemory_at_herokus_data_api_paths(
    http: httpx.Client, provisioner: RedisProvisioner
) -> None:
    addon = http.post("/apps/redis-app/addons", json={"plan": "kapal-redis:mini"}).json()
    name = addon["name"]
    database = http.get(f"/redis/v0/databases/{name}")
    assert database.status_code == 200, database.text
    body = database.json()
    assert body["addon_id"] == addon["id"]
    assert body["resource_url"] == http.get("/apps/redis-app/config-vars").json()["REDIS_URL"]
    info = {row["name"]: row["values"] for row in body["info"]}
    assert info["Plan"] == ["mini"]
    assert info["Status"] == ["available"]
    assert info["Maxmemory"] == ["noeviction"]
    assert info["Maxclients"] == ["20"]
    assert info["Persistence"] == ["none"]
    assert info["Keys"] == ["0"]
    assert info["Memory"][0].endswith(" used of 25.00M")
    assert info["Version"] == [body["version"]]

    changed = http.patch(
        f"/redis/v0/databases/{name}/config", json={"maxmemory_policy": "allkeys-lru"}
    )
    assert changed.status_code == 200, changed.text
    setting = changed.json()["maxmemory_policy"]
    assert (setting["value"], setting["default"]) == ("allkeys-lru", "noeviction")
    assert len(setting["values"]) == 8
    assert config_get(provisioner, name, "maxmemory-policy") == "allkeys-lru"
    got = http.get(f"/redis/v0/databases/{name}/config").json()
    assert got["maxmemory_policy"]["value"] == "allkeys-lru"

    wrong = http.patch(f"/redis/v0/databases/{name}/config", json={"maxmemory_policy": "lru"})
    assert (wrong.status_code, wrong.json()["id"]) == (422, "invalid_params")
    assert "Valid policies: noeviction" in wrong.json()["message"]


def test_other_users_and_other_addons_are_not_found(
    http: httpx.Client, api_url: str, ctx: Context
) -> None:
    name = http.post("/apps/redis-app/addons", json={"plan": "kapal-redis"}).json()["name"]
    signup(ctx, "mallory@example.com", "password123")
    headers = {"Authorization": f"Bearer {login(ctx, 'mallory@example.com', 'password123')}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as mallory:
        for response in (
            mallory.get(f"/redis/v0/databases/{name}"),
            mallory.patch(
                f"/redis/v0/databases/{name}/config", json={"maxmemory_policy": "allkeys-lru"}
            ),
        ):
            assert (response.status_code, response.json()["id"]) == (404, "not_found")
            assert "redis-app" not in response.text
    missing = http.get("/redis/v0/databases/redis-nothing-1234")
    assert missing.status_code == 404


def test_a_killed_api_leaves_a_server_that_recovery_removes(
    ctx: Context, app: App, provisioner: RedisProvisioner
) -> None:
    with ctx.store.session() as s:
        s.add(
            Addon(
                name="redis-crashed-1",
                app_id=app.id,
                service="kapal-redis",
                plan="mini",
                state="provisioning",
            )
        )
    # The API provisions, then dies (SIGKILL) before it stores the URL.
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from kapal.addons.redis import RedisProvisioner\n"
        "from kapal.settings import Settings\n"
        "settings = Settings(data_dir=Path(sys.argv[1]))\n"
        "RedisProvisioner(settings).provision('redis-crashed-1', 'mini')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    died = subprocess.run(
        [sys.executable, "-c", script, str(ctx.settings.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    pid = server_pid(provisioner, "redis-crashed-1")
    assert alive(pid)  # detached: it outlived the process that started it

    assert addons.recover_addons(ctx) == 1
    assert not alive(pid)
    assert not (provisioner.root / "redis-crashed-1").exists()
    with ctx.store.session() as s:
        assert s.scalars(select(Addon.name)).all() == []


@pytest.fixture
def kapal(api_url: str, token: str, app: App, tmp_path: Path) -> Run:
    return kapal_cli(api_url, token, tmp_path / "home")


def test_redis_cli_info_and_maxmemory_against_a_real_server(
    kapal: Run, capfd: pytest.CaptureFixture[str]
) -> None:
    assert shutil.which("redis-cli"), "redis-cli (redis-tools) must be installed for this test"
    created = kapal("addons:create", "kapal-redis", "-a", "redis-app")
    assert created.exit_code == 0, created.output
    name = created.stdout.split()[1]
    assert created.stdout.startswith(f"Created {name} as REDIS_URL")
    capfd.readouterr()

    stored = kapal("redis:cli", "-a", "redis-app", "-c", "SET greeting 'hello world'")
    assert stored.exit_code == 0, stored.output
    assert f"--> Connecting to {name}" in stored.stderr
    fetched = kapal("redis:cli", "REDIS_URL", "-a", "redis-app", "-c", "GET greeting")
    assert fetched.exit_code == 0, fetched.output
    output = capfd.readouterr()
    assert "hello world" in output.out  # redis-cli writes to the real stdout
    assert "Warning" not in output.err  # no password on its command line to warn about

    info = kapal("redis:info", "-a", "redis-app")
    assert info.exit_code == 0, info.output
    assert info.stdout.startswith(f"=== {name} (REDIS_URL)\n\n")
    assert "Plan:        mini\n" in info.stdout
    assert "Status:      available\n" in info.stdout
    assert "Keys:        1\n" in info.stdout

    policy = kapal("redis:maxmemory", "-a", "redis-app", "--policy", "volatile-ttl")
    assert policy.exit_code == 0, policy.output
    assert policy.stdout == (
        f"Maxmemory policy for {name} (REDIS_URL) set to volatile-ttl.\n"
        "volatile-ttl only evicts keys with an expiry set and a short TTL.\n"
    )
    assert "Maxmemory:   volatile-ttl\n" in kapal("redis:info", "-a", "redis-app").stdout

    wrong = kapal("redis:maxmemory", "-a", "redis-app", "-p", "sometimes")
    assert wrong.exit_code == 1
    assert "Invalid policy 'sometimes'" in wrong.stderr
