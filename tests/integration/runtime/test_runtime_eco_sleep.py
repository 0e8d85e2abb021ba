"""Eco dynos with the real agent and router processes: an app without requests sleeps (web and
worker, shown `idle`), the next requests are all held while it wakes and then answered, its
running time is counted, and a used-up quota is H82."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import free_port
from tests.integration.runtime.harness import WEB, World, add_demo_app
from tests.integration.runtime.test_runtime_agent_process import AgentProcess

from kapal.domain.eco import month_of
from kapal.settings import Settings
from kapal.store.models import EcoUsage, LogSession, now
from kapal.store.notify import notify

pytestmark = pytest.mark.timeout(180)

SLEEP_AFTER = "2"
WORKER = "exec sleep 600"


@pytest.fixture
def agent(tmp_path: Path, open_dir: Path, world: World) -> Iterator[tuple[AgentProcess, World]]:
    """The agent process on the world's store, eco dynos sleeping after SLEEP_AFTER seconds."""
    env = {
        "PATH": os.environ["PATH"],
        "KAPAL_DATA_DIR": str(open_dir / "data"),
        "KAPAL_LOGS_PORT": str(free_port()),
        "KAPAL_RENDEZVOUS_PORT": str(free_port()),
        "KAPAL_STOP_GRACE": "5",
        "KAPAL_ECO_SLEEP_AFTER": SLEEP_AFTER,
    }
    settings = Settings.from_env(env)
    world.store.engine.dispose()
    world.store = type(world.store).open(settings.database_url)
    world.tmp = settings.data_dir
    world.app_id, world.user_id = add_demo_app(world.store)
    process = AgentProcess(settings, env, tmp_path / "agent.log")
    try:
        yield process, world
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()
        world.store.engine.dispose()


@pytest.fixture
def router(agent: tuple[AgentProcess, World], tmp_path: Path) -> Iterator[int]:
    """The router process on the agent's data directory; yields its port. Its output must
    show no error."""
    process, _ = agent
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "KAPAL_DATA_DIR": str(process.settings.data_dir),
        "KAPAL_ROUTER_PORT": str(port),
        "KAPAL_ROUTER_TLS_PORT": str(free_port()),
        "KAPAL_ECO_SLEEP_AFTER": SLEEP_AFTER,
    }
    log = tmp_path / "router.log"
    with log.open("wb") as out:
        router = subprocess.Popen(
            [sys.executable, "-m", "kapal.entrypoints.router"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert router.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield port
    finally:
        router.send_signal(signal.SIGTERM)
        try:
            router.wait(30)
        except subprocess.TimeoutExpired:
            router.kill()
            router.wait()
    output = log.read_text()
    assert "Traceback" not in output and "ERROR" not in output, output


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def _get(port: int, path: str = "/hello.txt") -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}{path}", headers={"Host": "demo.localhost"}, timeout=60
    )


def test_an_eco_app_sleeps_wakes_on_requests_and_stops_when_its_quota_is_used_up(
    agent: tuple[AgentProcess, World], router: int
) -> None:
    process, world = agent
    world.release(world.slug({"web": WEB, "worker": WORKER}, {"hello.txt": "awake\n"}))
    world.scale("web", 1)
    world.scale("worker", 1)
    secret = "eco-log-session"
    with world.store.session() as s:
        s.add(
            LogSession(
                id_hash=hashlib.sha256(secret.encode()).hexdigest(),
                app_id=world.app_id,
                lines=1000,
                expires_at=now() + timedelta(minutes=5),
            )
        )
    notify(process.settings.agent_wake_socket)

    def states() -> dict[str, str]:
        return {name: dyno.state for name, dyno in world.dynos().items()}

    process.wait_for(lambda: states() == {"web.1": "up", "worker.1": "up"}, "dynos up")
    worker_pid = world.dynos()["worker.1"].pid
    assert _get(router).text == "awake\n"

    # No requests for the sleep period: web and worker sleep, their processes gone.
    process.wait_for(lambda: states() == {"web.1": "idle", "worker.1": "idle"}, "dynos idle")
    asleep = world.dynos()
    assert asleep["web.1"].port is None and asleep["worker.1"].pid is None
    assert worker_pid is not None
    process.wait_for(lambda: not Path(f"/proc/{worker_pid}").exists(), "the worker gone")

    # Requests during the wake are all held, then answered: no error page, none lost.
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _get(router), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert {r.text for r in responses} == {"awake\n"}
    process.wait_for(lambda: states().get("worker.1") == "up", "the worker woken with web")

    url = f"http://127.0.0.1:{process.settings.logs_port}/sessions/{secret}"

    def logs(*wanted: str) -> str:
        text = httpx.get(url).text
        return text if all(w in text for w in wanted) else ""

    text = process.wait_for(lambda: logs("Unidling"), "Unidling in the log")
    assert "kapal[web.1]: Idling" in text and "kapal[worker.1]: Idling" in text
    assert "kapal[web.1]: State changed from up to idle" in text
    assert "kapal[web.1]: State changed from idle to starting" in text

    # The owner's eco dyno hours used up (on another app, even one deleted): H82, dynos asleep.
    with world.store.session() as s:
        s.add(
            EcoUsage(
                user_id=world.user_id,
                app_id="deleted-app",
                month=month_of(time.time()),
                seconds=1000 * 3600.0,
            )
        )
    notify(process.settings.agent_wake_socket, process.settings.router_wake_socket)
    process.wait_for(lambda: states() == {"web.1": "idle", "worker.1": "idle"}, "quota sleep")
    process.wait_for(lambda: _get(router).status_code == 503, "H82")
    text = process.wait_for(lambda: logs("code=H82"), "H82 in the log")
    assert 'at=info code=H82 desc="Eco dyno quota exhausted"' in text
    assert "Idling: the eco dyno hours quota of this month is used up" in text

    # The dynos' running time is counted for the app, up to their ends.
    process.process.send_signal(signal.SIGTERM)
    assert process.process.wait(timeout=60) == 0, process.log.read_text()
    output = process.log.read_text()
    assert "Traceback" not in output and "ERROR" not in output, output
    with world.store.session() as s:
        used = s.scalar(
            select(EcoUsage.seconds).where(
                EcoUsage.user_id == world.user_id, EcoUsage.app_id == world.app_id
            )
        )
    assert used is not None and used > 0
