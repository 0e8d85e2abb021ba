"""The agent process itself (`python -m kapal.entrypoints.agent`): dynos, wake-ups, the log
hub and its session URLs, and a clean stop on SIGTERM."""

from __future__ import annotations

import hashlib
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from tests.conftest import free_port
from tests.integration.runtime.harness import WEB, World, add_demo_app

from kapal.domain.logline import LogLine
from kapal.logs.sender import LogSender
from kapal.settings import Settings
from kapal.store.models import LogSession, now
from kapal.store.notify import notify

T = TypeVar("T")


class AgentProcess:
    def __init__(self, settings: Settings, env: dict[str, str], log: Path) -> None:
        self.settings = settings
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kapal.entrypoints.agent"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_for(self, check: Callable[[], T], what: str, timeout: float = 60.0) -> T:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {what}; agent output:\n{self.log.read_text()}")
            time.sleep(0.05)


@pytest.fixture
def agent(
    request: pytest.FixtureRequest, tmp_path: Path, open_dir: Path, world: World
) -> Iterator[tuple[AgentProcess, World]]:
    """The agent process on the world's store; more settings through indirect parametrize."""
    data = open_dir / "data"
    env = {
        "PATH": os.environ["PATH"],
        "KAPAL_DATA_DIR": str(data),
        "KAPAL_LOGS_PORT": str(free_port()),
        "KAPAL_RENDEZVOUS_PORT": str(free_port()),
        "KAPAL_STOP_GRACE": "5",
        "KAPAL_BOOT_TIMEOUT": "20",
        **getattr(request, "param", {}),
    }
    settings = Settings.from_env(env)
    # The world's store and slugs, where the agent of this data directory looks for them.
    world.store.engine.dispose()
    world.store = type(world.store).open(settings.database_url)
    world.tmp = data
    world.app_id, world.user_id = add_demo_app(world.store)
    process = AgentProcess(settings, env, tmp_path / "agent.log")
    try:
        yield process, world
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()
        world.store.engine.dispose()


def test_agent_runs_dynos_serves_logs_and_stops_cleanly(
    agent: tuple[AgentProcess, World],
) -> None:
    process, world = agent
    settings = process.settings
    world.release(world.slug({"web": WEB}, {"hello.txt": "from the agent\n"}))
    world.scale("web", 1)
    secret = "log-session-secret"
    with world.store.session() as s:
        s.add(
            LogSession(
                id_hash=hashlib.sha256(secret.encode()).hexdigest(),
                app_id=world.app_id,
                lines=100,
                expires_at=now() + timedelta(minutes=5),
            )
        )

    def port_of(name: str) -> int | None:
        dyno = world.dynos().get(name)
        return dyno.port if dyno is not None and dyno.state == "up" else None

    port = process.wait_for(lambda: port_of("web.1"), "web.1 up")
    assert httpx.get(f"http://127.0.0.1:{port}/hello.txt").text == "from the agent\n"

    world.scale("web", 2)
    notify(settings.agent_wake_socket)
    second = process.wait_for(lambda: port_of("web.2"), "web.2 up")

    # Lines from other processes (the router, the API) reach the hub through its socket.
    sender = LogSender(settings.log_socket)
    sender.send(LogLine(world.app_id, "kapal", "router", "at=info path=/", time.time()))
    sender.close()
    url = f"http://127.0.0.1:{settings.logs_port}/sessions/{secret}"

    def logs() -> str:
        text = httpx.get(url).text
        return text if "kapal[router]: at=info path=/" in text else ""

    text = process.wait_for(logs, "the router line in the log session")
    assert f"kapal[web.1]: Starting process with command `{WEB}`" in text
    assert "kapal[web.2]: State changed from starting to up" in text
    assert httpx.get(f"http://127.0.0.1:{settings.logs_port}/sessions/wrong").status_code == 404

    web = world.dynos()["web.1"].pid
    assert web is not None
    uid = Path(f"/proc/{web}/status").read_text().split("\nUid:")[1].split()[0]

    process.process.send_signal(signal.SIGTERM)
    assert process.process.wait(timeout=60) == 0, process.log.read_text()
    output = process.log.read_text()
    assert "Traceback" not in output and "ERROR" not in output, output
    if os.geteuid() == 0:
        dyno_user = pwd.getpwnam("kapal-dyno")
        assert f"dynos run as user kapal-dyno (uid {dyno_user.pw_uid})" in output
        assert uid == str(dyno_user.pw_uid)
    else:
        assert "WARNING" in output and "NOT ROOT: dynos run as this agent's own user" in output
        assert uid == str(os.geteuid())
    assert world.dynos() == {}
    for p in (port, second):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{p}/hello.txt")


@pytest.mark.parametrize(
    "agent", [{"KAPAL_DYNO_CYCLE_HOURS": "0.0003", "KAPAL_RUN_TTL": "1"}], indirect=True
)
def test_agent_cycles_dynos_and_ends_one_offs_as_configured(
    agent: tuple[AgentProcess, World],
) -> None:
    process, world = agent
    version = world.release(world.slug({"worker": "exec sleep 600"}))
    world.scale("worker", 1)
    world.one_off("run.5001", "exec sleep 600", version)

    def worker_pid() -> int | None:
        dyno = world.dynos().get("worker.1")
        return dyno.pid if dyno is not None and dyno.state == "up" else None

    first = process.wait_for(worker_pid, "worker.1 up")
    # About a second later (0.0003 hours and up to 15 % more) it is cycled: a new process.
    process.wait_for(lambda: (pid := worker_pid()) and pid != first, "worker.1 cycled")
    process.wait_for(lambda: "run.5001" not in world.dynos(), "run.5001 ended")
    process.process.send_signal(signal.SIGTERM)
    assert process.process.wait(timeout=60) == 0, process.log.read_text()
