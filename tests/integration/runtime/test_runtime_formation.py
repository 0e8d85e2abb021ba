"""Formation dynos as real processes: up on $PORT, scaling, crashes, deploys, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.integration.runtime.harness import WEB, World, running

from kapal.entrypoints.agent_store import AgentStore
from kapal.runtime.backoff import Backoff
from kapal.runtime.dyno import Timing
from kapal.runtime.state import DynoRow
from kapal.store.models import Dyno


async def get(port: int) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/hello.txt", timeout=5)
        response.raise_for_status()
        return response.text


def refuses(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def up(world: World, name: str) -> int | None:
    dyno = world.dynos().get(name)
    return dyno.port if dyno is not None and dyno.state == "up" else None


def test_web_dyno_goes_up_and_serves(world: World) -> None:
    version = world.release(world.slug({"web": WEB}, {"hello.txt": "hello from v1\n"}))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world):
            port = await world.eventually(lambda: up(world, "web.1"), "web.1 up")
            assert await get(port) == "hello from v1\n"
            row = world.dynos()["web.1"]
            assert (row.type, row.release_version, row.command) == ("web", version, WEB)
            assert row.pid is not None and os.getpgid(row.pid) == row.pid  # its own group
        assert world.dynos() == {}  # the agent stopping stops its dynos and their rows
        assert refuses(port)

    asyncio.run(scenario())
    assert world.log.messages("web.1", "kapal")[:2] == [
        f"Starting process with command `{WEB}`",
        "State changed from starting to up",
    ]
    assert world.log.messages("web.1", "kapal")[-2:] == [
        "Stopping all processes with SIGTERM",
        "Process exited with status 143",
    ]


def test_dyno_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAPAL_SECRET_FOR_TEST", "must not leak")
    command = "env; exec sleep 600"
    world.release(world.slug({"worker": command}), config={"FOO": "bar baz"})
    world.scale("worker", 1)

    async def scenario() -> None:
        async with running(world):
            await world.eventually(
                lambda: any(m.startswith("PATH=") for m in world.log.messages("worker.1", "app")),
                "the environment in the log",
            )

    asyncio.run(scenario())
    env = dict(m.split("=", 1) for m in world.log.messages("worker.1", "app") if "=" in m)
    home = str(world.dynos_dir / world.app_id / "v1")
    assert env.pop("PWD") == home
    env.pop("SHLVL", None)
    env.pop("_", None)
    assert env == {
        "FOO": "bar baz",
        "DYNO": "worker.1",
        "HOME": home,
        "PATH": f"{home}/.venv/bin:/usr/local/bin:/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "LANG": "C.UTF-8",
        "DYNO_RAM": "512",
    }


def test_scale_up_and_down(world: World) -> None:
    world.release(world.slug({"web": WEB}, {"hello.txt": "hi\n"}))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world):
            await world.eventually(lambda: up(world, "web.1"), "web.1 up")
            world.scale("web", 2)
            ports = await world.eventually(
                lambda: (
                    (up(world, "web.1"), up(world, "web.2"))
                    if up(world, "web.1") and up(world, "web.2")
                    else None
                ),
                "web.1 and web.2 up",
            )
            assert ports[0] != ports[1]
            for port in ports:
                assert await get(port) == "hi\n"
            world.scale("web", 0)
            await world.eventually(lambda: world.dynos() == {}, "no dynos")
            await world.eventually(lambda: all(refuses(p) for p in ports), "ports closed")

    asyncio.run(scenario())
    for name in ("web.1", "web.2"):
        assert "Process exited with status 143" in world.log.messages(name, "kapal")


def test_crash_restarts_with_growing_back_off(world: World) -> None:
    world.release(world.slug({"worker": "echo boom; exit 3"}))
    world.scale("worker", 1)

    def starts() -> list[float]:
        return [
            line.time
            for line in world.log.lines
            if line.message.startswith("Starting process") and line.dyno == "worker.1"
        ]

    async def scenario() -> None:
        async with running(world):
            crashed = await world.eventually(
                lambda: (d := world.dynos().get("worker.1")) and d.state == "crashed" and d,
                "worker.1 crashed",
            )
            assert crashed.port is None and crashed.pid is None
            await world.eventually(lambda: len(starts()) >= 4, "three restarts")
            # The back-off is stored so `ps` can show it.
            row = await world.eventually(
                lambda: (d := world.dynos().get("worker.1")) and d.restart_at and d,
                "a retry time",
            )
            assert row.state == "crashed"
            # A new release resets the back-off and this one stays up.
            world.release(world.slug({"worker": "echo fixed; exec sleep 600"}))
            await world.eventually(
                lambda: (
                    (d := world.dynos().get("worker.1"))
                    and d.state == "up"
                    and d.release_version == 2
                ),
                "worker.1 up on v2",
            )

    asyncio.run(scenario())
    times = starts()
    # First restart at once, then at least 0.3 s, then at least 0.6 s (never earlier).
    assert times[2] - times[1] >= 0.3
    assert times[3] - times[2] >= 0.6
    messages = world.log.messages("worker.1")
    assert "boom" in messages
    assert "Process exited with status 3" in messages
    assert "State changed from up to crashed" in messages
    assert "State changed from crashed to starting" in messages


def test_boot_timeout_is_an_r10(world: World) -> None:
    world.release(world.slug({"web": "exec sleep 600"}))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world, timing=Timing(boot_timeout=0.5, stop_grace=5, poll=0.02)):
            await world.eventually(
                lambda: "State changed from starting to crashed" in world.log.messages("web.1"),
                "web.1 crashed",
            )

    asyncio.run(scenario())
    messages = world.log.messages("web.1", "kapal")
    assert messages[1:5] == [
        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 0.5 seconds"
        " of launch",
        "Stopping process with SIGKILL",
        "Process exited with status 137",
        "State changed from starting to crashed",
    ]


def test_deploy_replaces_web_dyno_after_the_new_one_is_up(world: World) -> None:
    world.release(world.slug({"web": WEB}, {"hello.txt": "v1\n"}))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world):
            old = await world.eventually(lambda: up(world, "web.1"), "web.1 up")
            world.release(world.slug({"web": WEB}, {"hello.txt": "v2\n"}))
            new = await world.eventually(
                lambda: (p := up(world, "web.1")) != old and p, "the new web.1 up"
            )
            assert world.dynos()["web.1"].release_version == 2
            assert await get(new) == "v2\n"
            await world.eventually(lambda: refuses(old), "the old web.1 gone")
            await world.eventually(
                lambda: not (world.dynos_dir / world.app_id / "v1").exists(), "v1 unpacked no more"
            )

    asyncio.run(scenario())
    print(world.log.dump())
    messages = world.log.messages("web.1", "kapal")
    assert messages.index("Restarting") > messages.index("State changed from starting to up", 2)


class RecordedRows(AgentStore):
    """Notes, with each write of the dyno rows, how many log lines there were by then."""

    def __init__(self, world: World) -> None:
        super().__init__(world.store.url)
        self.world = world
        self.writes: list[tuple[int, dict[str, int | None]]] = []

    def write_dynos(self, rows: Sequence[DynoRow]) -> None:
        super().write_dynos(rows)
        self.writes.append((len(self.world.log.lines), {r.name: r.port for r in rows}))


def test_a_replaced_web_dyno_is_unrouted_before_it_stops(world: World) -> None:
    """Stopped at once, the old web.1 would refuse (or drop, H13) requests the router sends
    it until the router reloads; its SIGTERM waits until the rows show the new web.1."""
    world.release(world.slug({"web": WEB}, {"hello.txt": "v1\n"}))
    world.scale("web", 1)
    store = RecordedRows(world)

    async def scenario() -> tuple[int, int]:
        async with running(world, store=store):
            old = await world.eventually(lambda: up(world, "web.1"), "web.1 up")
            world.release(world.slug({"web": WEB}, {"hello.txt": "v2\n"}))
            new = await world.eventually(
                lambda: (p := up(world, "web.1")) != old and p, "the new web.1 up"
            )
            await world.eventually(lambda: refuses(old), "the old web.1 gone")
            return old, new

    old, new = asyncio.run(scenario())
    sigterm = next(
        i
        for i, line in enumerate(world.log.lines)
        if line.dyno == "web.1" and line.message == "Stopping all processes with SIGTERM"
    )
    shown = next(lines for lines, ports in store.writes if ports.get("web.1") == new)
    assert shown <= sigterm, world.log.dump()
    assert all(ports.get("web.1") != old for lines, ports in store.writes if lines > sigterm)


def test_restart_replaces_dynos(world: World) -> None:
    world.release(world.slug({"worker": "exec sleep 600"}))
    world.scale("worker", 1)

    async def scenario() -> None:
        async with running(world):
            first = await world.eventually(
                lambda: (d := world.dynos().get("worker.1")) and d.state == "up" and d.pid, "up"
            )
            world.restart("worker")
            await world.eventually(
                lambda: (d := world.dynos().get("worker.1")) and d.state == "up" and d.pid != first,
                "a new worker.1",
            )

    asyncio.run(scenario())


def test_stop_timeout_is_an_r12(world: World) -> None:
    world.release(world.slug({"worker": "trap '' TERM; sleep 600"}))
    world.scale("worker", 1)

    async def scenario() -> None:
        async with running(world, timing=Timing(boot_timeout=5, stop_grace=0.5, poll=0.02)):
            await world.eventually(lambda: up_state(world), "worker.1 up")
            world.scale("worker", 0)
            await world.eventually(lambda: world.dynos() == {}, "no dynos")
            await world.eventually(
                lambda: "Process exited with status 137" in world.log.messages("worker.1"),
                "worker.1 killed",
            )

    asyncio.run(scenario())
    messages = world.log.messages("worker.1", "kapal")
    assert messages[-4:] == [
        "Stopping all processes with SIGTERM",
        "Error R12 (Exit timeout) -> At least one process failed to exit within 0.5 seconds"
        " of SIGTERM",
        "Stopping remaining processes with SIGKILL",
        "Process exited with status 137",
    ]


def up_state(world: World) -> bool:
    dyno = world.dynos().get("worker.1")
    return dyno is not None and dyno.state == "up"


def test_deleted_app_stops_its_dynos(world: World) -> None:
    world.release(world.slug({"worker": "exec sleep 600"}))
    world.scale("worker", 1)

    async def scenario() -> None:
        async with running(world) as agent:
            pid = await world.eventually(
                lambda: (d := world.dynos().get("worker.1")) and d.state == "up" and d.pid, "up"
            )
            world.delete_app()
            await world.eventually(lambda: not agent.supervisor.dynos, "nothing running")
            with pytest.raises(ProcessLookupError):
                os.killpg(pid, 0)

    asyncio.run(scenario())


def test_agent_start_stops_dynos_of_an_earlier_run(world: World, tmp_path: Path) -> None:
    home = world.dynos_dir / world.app_id / "v1"
    home.mkdir(parents=True)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    leftover = subprocess.Popen(["sleep", "600"], env=env, start_new_session=True)
    # Same recorded-pid situation, but not a dyno of ours: a pid reused after a reboot, by a
    # process that started after the row was last written.
    stranger = subprocess.Popen(
        ["sleep", "600"], env={**env, "HOME": str(tmp_path)}, start_new_session=True
    )
    written = {"web.1": datetime.now(UTC), "web.2": datetime.now(UTC) - timedelta(minutes=1)}
    try:
        world.release(None)
        with world.store.session() as s:
            for name, proc in (("web.1", leftover), ("web.2", stranger)):
                s.add(
                    Dyno(
                        app_id=world.app_id,
                        name=name,
                        type="web",
                        command="x",
                        release_version=1,
                        state="up",
                        port=1,
                        pid=proc.pid,
                        updated_at=written[name],
                    )
                )

        async def scenario() -> None:
            async with running(world):
                await world.eventually(lambda: world.dynos() == {}, "rows reset")
                await world.eventually(lambda: leftover.poll() is not None, "leftover stopped")

        asyncio.run(scenario())
        assert leftover.returncode == -signal.SIGTERM  # no longer wanted: stopped as any dyno
        assert stranger.poll() is None
    finally:
        for proc in (leftover, stranger):
            proc.kill()
            proc.wait()


def test_restart_of_one_dyno_through_its_row(world: World) -> None:
    world.release(world.slug({"worker": "exec sleep 600"}))
    world.scale("worker", 2)

    def running_pids() -> dict[str, int] | None:
        dynos = world.dynos()
        pids = {n: d.pid for n, d in dynos.items() if d.state == "up" and d.pid}
        return pids if len(pids) == 2 else None

    async def scenario() -> None:
        async with running(world):
            before = await world.eventually(running_pids, "two workers up")
            with world.store.session() as s:
                row = s.get(Dyno, world.dynos()["worker.2"].id)
                assert row is not None
                row.restart_at = datetime.now(UTC)  # what `DELETE /apps/{app}/dynos/worker.2` does
            after = await world.eventually(
                lambda: (p := running_pids()) and p["worker.2"] != before["worker.2"] and p,
                "a new worker.2",
            )
            assert after["worker.1"] == before["worker.1"]
            # The request is answered: it is cleared and does not restart the new dyno again.
            await world.eventually(
                lambda: world.dynos()["worker.2"].restart_at is None, "restart_at cleared"
            )
            assert running_pids() == after

    asyncio.run(scenario())


def test_restart_of_a_crashed_dyno_ends_its_back_off(world: World) -> None:
    world.release(world.slug({"worker": "exit 1"}))
    world.scale("worker", 1)

    def starts() -> int:
        messages = world.log.messages("worker.1", "kapal")
        return messages.count("Starting process with command `exit 1`")

    async def scenario() -> None:
        async with running(world, backoff=Backoff(first=600, cap=600)):
            # The first restart is immediate; after the second crash it waits ten minutes.
            row = await world.eventually(
                lambda: (
                    (d := world.dynos().get("worker.1"))
                    and d.state == "crashed"
                    and d.restart_at
                    and d.restart_at > datetime.now(UTC) + timedelta(seconds=300)
                    and d
                ),
                "a long back-off",
            )
            assert starts() == 2
            with world.store.session() as s:
                crashed = s.get(Dyno, row.id)
                assert crashed is not None
                crashed.restart_at = datetime.now(UTC)
            await world.eventually(lambda: starts() == 3, "the restart asked for")

    asyncio.run(scenario())
