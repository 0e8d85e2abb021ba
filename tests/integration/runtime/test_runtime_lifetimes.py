"""Lifetimes with real processes: formation dynos are cycled (Heroku's daily restart, here with
a period of about a second), one-off dynos end after their time to live."""

from __future__ import annotations

import asyncio
import hashlib

from tests.integration.runtime.harness import WEB, World, running

from kapal.runtime.lifetimes import Lifetimes


def up_pid(world: World, name: str) -> int | None:
    dyno = world.dynos().get(name)
    return dyno.pid if dyno is not None and dyno.state == "up" else None


def test_formation_dynos_are_cycled(world: World) -> None:
    world.release(world.slug({"worker": "exec sleep 600"}))
    world.scale("worker", 1)

    async def scenario() -> None:
        async with running(world, lifetimes=Lifetimes(cycle=1.0, jitter=0.5)):
            first = await world.eventually(lambda: up_pid(world, "worker.1"), "worker.1 up")
            await world.eventually(
                lambda: (pid := up_pid(world, "worker.1")) and pid != first, "a new worker.1"
            )

    asyncio.run(scenario())
    messages = world.log.messages("worker.1", "kapal")
    cycled = messages.index("Cycling")
    assert "Restarting" not in messages
    # Then the usual lines of a restart: the old process stopped, a new one started.
    after = messages[cycled + 1 :]
    assert "Stopping all processes with SIGTERM" in after
    assert "Process exited with status 143" in after
    assert "Starting process with command `exec sleep 600`" in after


def test_a_cycled_web_dyno_serves_until_its_successor_is_up(world: World) -> None:
    world.release(world.slug({"web": WEB}, {"hello.txt": "hi\n"}))
    world.scale("web", 1)

    def port() -> int | None:
        dyno = world.dynos().get("web.1")
        return dyno.port if dyno is not None and dyno.state == "up" else None

    async def scenario() -> None:
        async with running(world, lifetimes=Lifetimes(cycle=3.0, jitter=0.0)):
            first = await world.eventually(port, "web.1 up")
            await world.eventually(lambda: (p := port()) and p != first, "a new web.1 up")
            await world.eventually(
                lambda: "Cycling" in world.log.messages("web.1", "kapal"), "the old one cycled"
            )

    asyncio.run(scenario())
    messages = world.log.messages("web.1", "kapal")
    before = messages[: messages.index("Cycling")]
    assert before.count("State changed from starting to up") == 2, messages


def test_one_off_dynos_end_after_their_time_to_live(world: World) -> None:
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.3001", "exec sleep 600", version)

    async def scenario() -> None:
        async with running(world, lifetimes=Lifetimes(run_ttl=0.5)):
            await world.eventually(lambda: up_pid(world, "run.3001"), "run.3001 running")
            await world.eventually(lambda: "run.3001" not in world.dynos(), "the row removed")

    asyncio.run(scenario())
    assert world.log.messages("run.3001", "kapal") == [
        "Starting process with command `exec sleep 600`",
        "State changed from starting to up",
        "Stopping: the time to live of 0.5 seconds is over",
        "Stopping all processes with SIGTERM",
        "Process exited with status 143",
        "State changed from up to complete",
    ]


def test_an_attached_one_off_ends_after_its_time_to_live(world: World) -> None:
    version = world.release(world.slug({"web": "x"}))
    secret_hash = hashlib.sha256(b"ttl").hexdigest()
    world.one_off("run.3002", "echo started; exec sleep 600", version, attach_hash=secret_hash)

    async def scenario() -> bytes:
        async with running(world, lifetimes=Lifetimes(run_ttl=0.5)) as agent:
            reader, writer = await asyncio.open_connection("127.0.0.1", agent.rendezvous.port)
            try:
                writer.write(b"ttl\r\n")
                assert await reader.readline() == b"rendezvous\r\n"
                output = await reader.read()  # until the agent closes: the dyno ended
            finally:
                writer.close()
                await writer.wait_closed()
            await world.eventually(lambda: "run.3002" not in world.dynos(), "the row removed")
            return output

    assert asyncio.run(scenario()) == b"started\n"
    messages = world.log.messages("run.3002", "kapal")
    assert "Stopping: the time to live of 0.5 seconds is over" in messages
    assert "Process exited with status 143" in messages
