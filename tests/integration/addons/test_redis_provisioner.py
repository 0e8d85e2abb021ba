"""The kapal-redis provisioner and fleet against real redis-server processes: plans,
isolation, idempotence, crash recovery, restarts, and passwords kept out of sight."""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration.addons.redis_check import (
    admin_call,
    alive,
    conf_of,
    config_get,
    connect,
    process_uid,
    server_pid,
)

from kapal.addons.errors import ProvisionError
from kapal.addons.redis import SYSTEM_USER, RedisFleet, RedisProvisioner
from kapal.addons.redis_server import RedisServerError
from kapal.addons.resp import RespError
from kapal.domain.errors import InvalidParams
from kapal.settings import Settings

pytestmark = pytest.mark.timeout(120)

URL = re.compile(r"^redis://:([0-9a-f]{64})@localhost:(\d+)$")


@pytest.fixture
def provisioner(open_dir: Path) -> Iterator[RedisProvisioner]:
    """Provisions under a data directory the kapal-redis user can reach; every server it
    made is stopped afterwards."""
    made = RedisProvisioner(Settings(data_dir=open_dir))
    yield made
    for name in made.names():
        made.deprovision(name)


@pytest.fixture
def addon_name() -> Callable[[], str]:
    return lambda: f"redis-test-{secrets.token_hex(4)}"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """A readiness condition with a deadline (the deadline is no assertion about speed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


def test_mini_url_works_with_the_plans_settings(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "mini")["URL"]
    assert URL.match(url), url
    with connect(url) as conn:
        assert conn.call("SET", "greeting", "hello") == "OK"
        assert conn.call("GET", "greeting") == b"hello"
    assert config_get(provisioner, name, "maxmemory") == str(25 * 1024 * 1024)
    assert config_get(provisioner, name, "maxmemory-policy") == "noeviction"
    assert config_get(provisioner, name, "maxclients") == "20"
    assert config_get(provisioner, name, "appendonly") == "no"
    assert config_get(provisioner, name, "save") == ""
    assert config_get(provisioner, name, "bind") == "127.0.0.1"
    assert config_get(provisioner, name, "protected-mode") == "yes"


def test_premium_plans_keep_an_append_only_file(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    provisioner.provision(name, "premium-2")
    assert config_get(provisioner, name, "maxmemory") == str(250 * 1024 * 1024)
    assert config_get(provisioner, name, "maxclients") == "200"
    assert config_get(provisioner, name, "appendonly") == "yes"
    assert config_get(provisioner, name, "dir") == str(provisioner.root / name)


def test_without_the_password_or_with_another_addons_it_is_refused(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    mine = provisioner.provision(addon_name(), "mini")["URL"]
    other = provisioner.provision(addon_name(), "mini")["URL"]
    other_password = URL.match(other)[1]
    with connect(mine, auth=False) as conn:
        with pytest.raises(RespError, match="NOAUTH"):
            conn.call("GET", "anything")
        with pytest.raises(RespError, match="WRONGPASS"):
            conn.call("AUTH", other_password)
        with pytest.raises(RespError, match="WRONGPASS"):
            conn.call("AUTH", "kapal", other_password)
        with pytest.raises(RespError, match="NOAUTH"):
            conn.call("GET", "anything")


def test_the_apps_user_cannot_change_the_server(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    url = provisioner.provision(addon_name(), "mini")["URL"]
    with connect(url) as conn:
        for command in (
            ("CONFIG", "SET", "maxmemory", "0"),
            ("CONFIG", "GET", "requirepass"),
            ("SHUTDOWN", "NOSAVE"),
            ("ACL", "LIST"),
            ("REPLICAOF", "127.0.0.1", "1"),
            ("MODULE", "LIST"),
            ("MIGRATE", "127.0.0.1", "1", "k", "0", "100"),
            ("BGSAVE",),
        ):
            with pytest.raises(RespError, match="NOPERM"):
                conn.call(*command)
        # What apps and their libraries do use still works.
        conn.call("SET", "k", "v")
        assert conn.call("KEYS", "*") == [b"k"]
        assert b"redis_version" in conn.call("INFO", "server")
        assert isinstance(conn.call("CLIENT", "LIST"), bytes)
        assert conn.call("FLUSHALL") == "OK"


def test_provisioning_twice_gives_the_same_running_server(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "premium-0")["URL"]
    pid = server_pid(provisioner, name)
    with connect(url) as conn:
        conn.call("SET", "kept", "yes")
    assert provisioner.provision(name, "premium-0")["URL"] == url
    assert server_pid(provisioner, name) == pid
    with connect(url) as conn:
        assert conn.call("GET", "kept") == b"yes"


def test_deprovision_stops_the_server_and_removes_its_directory(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "premium-0")["URL"]
    pid = server_pid(provisioner, name)
    provisioner.deprovision(name)
    assert not alive(pid)
    assert not (provisioner.root / name).exists()
    with pytest.raises(OSError):
        connect(url).close()
    provisioner.deprovision(name)  # again: nothing to do
    provisioner.deprovision(addon_name())  # never provisioned


def test_a_server_without_its_pidfile_is_still_found_and_stopped(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    # A server writes its pidfile only after it forked: a provisioning killed in between
    # leaves a running server without one, which deprovisioning must not miss.
    name = addon_name()
    provisioner.provision(name, "mini")
    pid = server_pid(provisioner, name)
    (provisioner.root / name / "redis.pid").unlink()
    provisioner.deprovision(name)
    assert not alive(pid)
    assert not (provisioner.root / name).exists()


def test_a_crash_after_making_the_directory_is_finished_by_the_next_provision(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    directory = provisioner.root / name
    directory.mkdir(parents=True)
    (directory / ".redis.conf.tmp").write_text("port 1")  # half a file, never renamed
    url = provisioner.provision(name, "mini")["URL"]
    with connect(url) as conn:
        assert conn.call("PING") == "PONG"


def test_a_server_that_died_before_the_url_was_stored_is_started_again(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "mini")["URL"]
    os.kill(server_pid(provisioner, name), signal.SIGKILL)
    assert provisioner.provision(name, "mini")["URL"] == url
    with connect(url) as conn:
        assert conn.call("PING") == "PONG"


def test_the_server_runs_unprivileged_in_a_private_directory(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    provisioner.provision(name, "mini")
    directory = provisioner.root / name
    expected = pwd.getpwnam(SYSTEM_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
    assert process_uid(server_pid(provisioner, name)) == expected
    assert directory.stat().st_uid == expected
    assert directory.stat().st_mode & 0o777 == 0o700
    assert (directory / "redis.conf").stat().st_mode & 0o777 == 0o600


def test_passwords_are_never_on_a_command_line_or_in_logs(
    provisioner: RedisProvisioner,
    addon_name: Callable[[], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    name = addon_name()
    provisioner.provision(name, "premium-0")
    conf = conf_of(provisioner, name)
    pid = server_pid(provisioner, name)
    fleet = RedisFleet(provisioner, lambda: [name])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), "the kill")
    fleet.reconcile()
    provisioner.set_policy(name, "allkeys-lru")
    provisioner.deprovision(name)
    provisioner.provision(name, "mini")
    texts = {
        "cmdline": Path(f"/proc/{server_pid(provisioner, name)}/cmdline").read_text(),
        "Kapal's log": caplog.text,
        "redis.log": (provisioner.root / name / "redis.log").read_text(),
    }
    new = conf_of(provisioner, name)
    for secret in (conf.password, conf.admin_password, new.password, new.admin_password):
        for where, text in texts.items():
            assert secret not in text, where
    assert "provisioned Redis for add-on" in caplog.text


def test_a_start_failure_says_why_without_the_password(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    provisioner.provision(name, "mini")
    conf = conf_of(provisioner, name)
    provisioner.stop(name)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", conf.port))
        squatter.listen()
        with pytest.raises(RedisServerError, match="Address already in use") as failure:
            provisioner.start(name)
    assert conf.password not in str(failure.value)
    assert conf.admin_password not in str(failure.value)


def test_a_missing_redis_server_is_reported(open_dir: Path) -> None:
    settings = Settings(data_dir=open_dir, redis_server="/nonexistent/redis-server")
    with pytest.raises(ProvisionError, match="apt-get install redis-server"):
        RedisProvisioner(settings).provision("redis-missing", "mini")


def test_the_maxmemory_policy_applies_now_and_after_a_restart(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    provisioner.provision(name, "mini")
    provisioner.set_policy(name, "allkeys-lru")
    assert config_get(provisioner, name, "maxmemory-policy") == "allkeys-lru"
    provisioner.stop(name)
    assert provisioner.start(name)
    assert config_get(provisioner, name, "maxmemory-policy") == "allkeys-lru"
    assert provisioner.policy(name) == "allkeys-lru"
    with pytest.raises(InvalidParams, match="Valid policies: noeviction, allkeys-lfu"):
        provisioner.set_policy(name, "lru")


def test_info_comes_from_the_running_server(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "premium-0")["URL"]
    with connect(url) as conn:
        conn.call("SET", "a", "1")
    info = provisioner.info(name)
    assert info is not None
    assert info["redis_version"].count(".") == 2
    assert info["maxmemory"] == str(50 * 1024 * 1024)
    assert info["maxmemory_policy"] == "noeviction"
    assert info["db0"].startswith("keys=1,")
    provisioner.stop(name)
    assert provisioner.info(name) is None


def test_persistent_data_survives_a_restart_of_the_fleet(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    persistent, volatile = addon_name(), addon_name()
    urls = {
        name: provisioner.provision(name, plan)["URL"]
        for name, plan in ((persistent, "premium-0"), (volatile, "mini"))
    }
    for url in urls.values():
        with connect(url) as conn:
            conn.call("SET", "kept", "yes")
    pids = [server_pid(provisioner, name) for name in urls]

    fleet = RedisFleet(provisioner, lambda: list(urls))
    fleet.start()
    fleet.close()  # the platform stops: every server with it
    assert [pid for pid in pids if alive(pid)] == []

    fleet = RedisFleet(provisioner, lambda: list(urls))
    fleet.start()
    try:
        with connect(urls[persistent]) as conn:
            assert conn.call("GET", "kept") == b"yes"
        with connect(urls[volatile]) as conn:
            assert conn.call("GET", "kept") is None  # mini keeps nothing, like Heroku's
    finally:
        fleet.close()


def test_the_fleet_starts_only_wanted_servers_and_restarts_a_killed_one(
    provisioner: RedisProvisioner, addon_name: Callable[[], str]
) -> None:
    wanted, unwanted = addon_name(), addon_name()
    url = provisioner.provision(wanted, "mini")["URL"]
    provisioner.provision(unwanted, "mini")
    provisioner.stop(unwanted)  # e.g. its add-on row is still `provisioning`
    fleet = RedisFleet(provisioner, lambda: [wanted, "redis-not-here"], every=0.05)
    fleet.start()
    try:
        pid = server_pid(provisioner, wanted)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: provisioner.info(wanted) is not None, "the restart")
        assert server_pid(provisioner, wanted) != pid
        with connect(url) as conn:
            assert conn.call("PING") == "PONG"
        assert provisioner.info(unwanted) is None
    finally:
        fleet.close()
    assert provisioner.info(wanted) is None


def test_a_server_that_cannot_start_is_retried_later(
    provisioner: RedisProvisioner,
    addon_name: Callable[[], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = addon_name()
    provisioner.provision(name, "mini")
    provisioner.stop(name)
    now = [100.0]
    fleet = RedisFleet(provisioner, lambda: [name], clock=lambda: now[0])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", conf_of(provisioner, name).port))
        squatter.listen()
        fleet.reconcile()
        fleet.reconcile()  # too soon: not tried again
        assert caplog.text.count("did not start (again in 1 s)") == 1
        now[0] += 1.5
        fleet.reconcile()
        assert "did not start (again in 2 s)" in caplog.text
    now[0] += 2.5
    fleet.reconcile()
    assert admin_call(provisioner, name, "PING") == "PONG"
