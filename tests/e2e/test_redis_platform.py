"""kapal-redis with the whole platform: a server provisioned through the CLI keeps serving while
the API is killed, stops with `kapal up` (no process left), comes back with its data when Kapal
starts again, and is gone after addons:destroy."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kapal.addons.resp import RespConnection
from tests.e2e.kapal_server import new_user, processes_under, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

APP = "cache-demo"


def redis_call(url: str, *args: str) -> object:
    parts = urlsplit(url)
    assert parts.port is not None
    with RespConnection("127.0.0.1", parts.port, timeout=5) as conn:
        conn.call("AUTH", parts.password or "")
        return conn.call(*args)


def api_pid(kapal_up: int) -> int:
    for child in Path(f"/proc/{kapal_up}/task/{kapal_up}/children").read_text().split():
        if "kapal.entrypoints.api" in Path(f"/proc/{child}/cmdline").read_text():
            return int(child)
    raise AssertionError("kapal up has no API child")


def redis_servers(root: Path) -> list[str]:
    return [line for line in processes_under(root) if "redis-server" in line]


def test_redis_lives_and_dies_with_the_platform_and_keeps_its_data() -> None:
    server = start_server()
    try:
        user = new_user(server, "cache")
        user.kapal("signup", "--email", "cache@example.com", input="cache demo 1\n")
        user.kapal("apps:create", APP)
        created = user.kapal("addons:create", "kapal-redis:premium-0", "-a", APP)
        assert "as REDIS_URL" in created.stdout
        url = user.kapal("config:get", "REDIS_URL", "-a", APP).stdout.strip()
        assert redis_call(url, "SET", "visits", "41") == "OK"
        assert url.split("@")[0].split(":")[-1] not in "".join(server.output)

        assert server.process is not None
        os.kill(api_pid(server.process.pid), signal.SIGKILL)
        assert redis_call(url, "INCR", "visits") == 42  # the server is no child of the API

        assert server.stop() == 0, "".join(server.output[-50:])
        assert processes_under(server.root) == [], "kapal up left processes running"

        server.start()
        deadline = time.monotonic() + 30
        while True:  # the API may still be starting; the server is up before the dynos
            try:
                assert redis_call(url, "GET", "visits") == b"42"
                break
            except OSError:
                assert time.monotonic() < deadline, "Redis did not come back with Kapal"
                time.sleep(0.1)
        info = user.kapal("redis:info", "-a", APP).stdout
        assert "Status:      available" in info
        assert "Persistence: AOF" in info

        name = created.stdout.split()[1]
        user.kapal("addons:destroy", name, "-a", APP, "--confirm", APP)
        assert redis_servers(server.root) == []
    finally:
        status = server.stop()
        try:
            assert status == 0, "kapal up did not stop cleanly:\n" + "".join(server.output[-50:])
            assert processes_under(server.root) == [], "Ctrl-C left processes running"
        finally:
            shutil.rmtree(server.root, ignore_errors=True)
