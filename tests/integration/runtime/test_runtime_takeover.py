"""An agent that starts while dynos of an earlier run (it was killed) still serve: they serve on,
routed, until new dynos replace them, then they are killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import httpx
from tests.conftest import free_port
from tests.integration.runtime.harness import WEB, World, running

from kapal.runtime.leftovers import alive, is_leftover, members, started
from kapal.store.models import Dyno


def leftover_web(world: World, port: int) -> subprocess.Popen[bytes]:
    """A web dyno as an earlier agent run left it: its own session, HOME in the unpacked
    release, its row up on its port."""
    home = world.dynos_dir / world.app_id / "v1"
    home.mkdir(parents=True)
    (home / "hello.txt").write_text("old\n")
    argv = ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        argv,
        cwd=home,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with world.store.session() as s:
        s.add(
            Dyno(
                app_id=world.app_id,
                name="web.1",
                type="web",
                command=WEB,
                release_version=1,
                state="up",
                port=port,
                pid=process.pid,
            )
        )
    return process


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/hello.txt", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_dynos_of_an_earlier_run_serve_until_replaced(world: World) -> None:
    world.release(world.slug({"web": WEB}))
    world.scale("web", 1)
    port = free_port()
    old = leftover_web(world, port)
    try:
        # Wait until the leftover listens, so the row is true before the agent starts.
        deadline = time.monotonic() + 10
        while not answers(port):
            assert time.monotonic() < deadline and old.poll() is None, "leftover did not start"
            time.sleep(0.05)
        seen: list[tuple[str, int | None, int | None, bool]] = []

        async def scenario() -> None:
            async with running(world):
                # What the router would see, all along: web.1 up on a port that answers.
                while True:
                    row = world.dynos()["web.1"]
                    ok = row.state == "up" and row.port is not None
                    ok = ok and await asyncio.to_thread(answers, row.port or 0)
                    seen.append((row.state, row.port, row.pid, ok))
                    if row.pid != old.pid and old.poll() is not None:
                        break
                    assert len(seen) < 2000, seen[-5:]
                    await asyncio.sleep(0.02)
                row = world.dynos()["web.1"]
                assert row.restart_at is None  # the restart it was asked for is done
                assert row.port != port

        asyncio.run(scenario())
        assert old.returncode == -signal.SIGTERM
        assert all(ok for *_, ok in seen), [s for s in seen if not s[-1]]
        assert {pid for _, _, pid, _ in seen} == {old.pid, seen[-1][2]}
        messages = world.log.messages("web.1")
        assert "Stopping all processes with SIGTERM" in messages
    finally:
        if old.poll() is None:
            old.kill()
        old.wait()


def test_one_offs_of_an_earlier_run_are_killed_at_once(world: World) -> None:
    version = world.release(world.slug({"web": WEB}))
    one_off = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        with world.store.session() as s:
            s.add(
                Dyno(
                    app_id=world.app_id,
                    name="run.1",
                    type="run",
                    command="sleep 600",
                    release_version=version,
                    state="up",
                    pid=one_off.pid,
                )
            )

        async def scenario() -> None:
            async with running(world):
                await world.eventually(lambda: one_off.poll() is not None, "one-off killed")
                assert "run.1" not in world.dynos()

        asyncio.run(scenario())
        assert one_off.returncode == -signal.SIGKILL
    finally:
        if one_off.poll() is None:
            one_off.kill()
        one_off.wait()


def test_a_leftover_is_its_process_group_started_before_its_row_was_written() -> None:
    before = time.time()
    dyno = subprocess.Popen(
        ["sh", "-c", "sleep 60 & sleep 60 & wait"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while len(members(dyno.pid)) < 3:
            assert time.monotonic() < deadline, members(dyno.pid)
            time.sleep(0.02)
        assert dyno.pid in members(dyno.pid)
        assert os.getpid() not in members(dyno.pid)  # the same cgroup as ours: not counted
        since = started(dyno.pid)
        assert since is not None and before - 1 <= since <= time.time() + 1
        assert is_leftover(dyno.pid, time.time())
        # A row written a minute before this process started names another process.
        assert not is_leftover(dyno.pid, before - 60)
    finally:
        os.killpg(dyno.pid, signal.SIGKILL)
        dyno.wait()
    assert not alive(dyno.pid)
    assert not is_leftover(dyno.pid, time.time())
