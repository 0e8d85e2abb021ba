"""What the API's requests do to running dynos, through its services and the agent's runtime
with real processes: a new dyno size (`ps:type`), `ps:stop`, and a new release after crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.integration.runtime.harness import World, running

from kapal.logs.sender import LogSender
from kapal.runtime.backoff import Backoff
from kapal.services import dynos as dynos_service
from kapal.services import formation as formation_service
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import User

SLEEP = "exec sleep 600"


@pytest.fixture
def ctx(world: World) -> Iterator[Context]:
    settings = Settings(data_dir=world.tmp)  # its sockets are never bound: hints are dropped
    log = LogSender(settings.log_socket)
    yield Context(settings, world.store, log)
    log.close()


@pytest.fixture
def user(world: World) -> User:
    with world.store.session() as s:
        found = s.get(User, world.user_id)
        assert found is not None
        return found


def up_pids(world: World, type_: str) -> dict[str, int]:
    return {
        name: d.pid
        for name, d in world.dynos().items()
        if d.type == type_ and d.state == "up" and d.pid is not None
    }


def test_a_new_size_replaces_the_dynos_of_that_type(world: World, ctx: Context, user: User) -> None:
    world.release(world.slug({"worker": SLEEP, "clock": SLEEP}))
    world.scale("worker", 1)
    world.scale("clock", 1)

    async def scenario() -> None:
        async with running(world):
            before = await world.eventually(
                lambda: (
                    (p := {**up_pids(world, "worker"), **up_pids(world, "clock")})
                    and len(p) == 2
                    and p
                ),
                "worker.1 and clock.1 up",
            )
            update = formation_service.Update("worker", size="Standard-2X")
            formation_service.scale(ctx, user, "demo", [update])
            row = await world.eventually(
                lambda: (
                    (d := world.dynos()["worker.1"]).size == "standard-2x" and d.state == "up" and d
                ),
                "worker.1 of the new size up",
            )
            assert row.pid != before["worker.1"]
            assert up_pids(world, "clock") == {"clock.1": before["clock.1"]}

    asyncio.run(scenario())
    assert "Restarting" in world.log.messages("worker.1", "kapal")
    assert "Restarting" not in world.log.messages("clock.1", "kapal")


def test_a_stopped_formation_dyno_is_started_again(world: World, ctx: Context, user: User) -> None:
    world.release(world.slug({"worker": SLEEP}))
    world.scale("worker", 2)

    async def scenario() -> None:
        async with running(world):
            first = await world.eventually(
                lambda: (p := up_pids(world, "worker")) and len(p) == 2 and p, "two workers up"
            )
            dynos_service.stop_dyno(ctx, user, "demo", "worker.1")
            second = await world.eventually(
                lambda: (
                    (p := up_pids(world, "worker"))
                    and p.get("worker.1") != first["worker.1"]
                    and len(p) == 2
                    and p
                ),
                "a new worker.1",
            )
            assert second["worker.2"] == first["worker.2"]
            dynos_service.stop_type(ctx, user, "demo", "worker")
            await world.eventually(
                lambda: (
                    (p := up_pids(world, "worker"))
                    and len(p) == 2
                    and not set(p.values()) & set(second.values())
                ),
                "both workers replaced",
            )

    asyncio.run(scenario())
    messages = world.log.messages("worker.1", "kapal")
    assert "Stopping all processes with SIGTERM" in messages
    assert "Process exited with status 143" in messages


def test_a_stopped_one_off_ends(world: World, ctx: Context, user: User) -> None:
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.4001", SLEEP, version)
    world.one_off("run.4002", SLEEP, version)

    def running_one_offs() -> set[str]:
        return set(up_pids(world, "run"))

    async def scenario() -> None:
        async with running(world):
            await world.eventually(lambda: len(running_one_offs()) == 2, "both one-offs up")
            dynos_service.stop_dyno(ctx, user, "demo", "run.4001")
            await world.eventually(lambda: "run.4001" not in world.dynos(), "run.4001 gone")
            assert running_one_offs() == {"run.4002"}
            dynos_service.stop_type(ctx, user, "demo", "run")
            await world.eventually(lambda: world.dynos() == {}, "every one-off gone")

    asyncio.run(scenario())
    for name in ("run.4001", "run.4002"):
        messages = world.log.messages(name, "kapal")
        assert messages.count(f"Starting process with command `{SLEEP}`") == 1  # not again
        assert messages[-2:] == [
            "Process exited with status 143",
            "State changed from up to complete",
        ]


def test_a_new_release_resets_the_crash_count(world: World) -> None:
    world.release(world.slug({"worker": "exit 1"}))
    world.scale("worker", 1)

    def starts(command: str) -> int:
        return world.log.messages("worker.1", "kapal").count(
            f"Starting process with command `{command}`"
        )

    def waits_long(version: int) -> bool:
        dyno = world.dynos().get("worker.1")
        return bool(
            dyno is not None
            and dyno.release_version == version
            and dyno.state == "crashed"
            and dyno.restart_at
            and dyno.restart_at > datetime.now(UTC) + timedelta(seconds=300)
        )

    async def scenario() -> None:
        async with running(world, backoff=Backoff(first=600, cap=600)):
            # The first restart is immediate; after the second crash it waits ten minutes.
            await world.eventually(lambda: waits_long(1), "a long back-off on v1")
            assert starts("exit 1") == 2
            world.release(world.slug({"worker": "exit 2"}))
            # Counted afresh: v2 starts at once, and its first crash restarts at once too.
            await world.eventually(lambda: waits_long(2), "a long back-off on v2")
            assert starts("exit 2") == 2

    asyncio.run(scenario())
