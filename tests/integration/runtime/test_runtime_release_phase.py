"""The release phase: a pending release's command decides whether it goes live."""

from __future__ import annotations

import asyncio

from tests.integration.runtime.harness import World, running

from kapal.runtime.lifecycles import Limits


def test_release_phase_success_deploys_the_release(world: World) -> None:
    process_types = {"worker": "exec sleep 600", "release": "echo migrating $FOO; exit 0"}
    version = world.release(world.slug(process_types), {"FOO": "db"}, "echo migrating $FOO")
    world.scale("worker", 1)

    async def scenario() -> None:
        async with running(world):
            await world.eventually(
                lambda: (d := world.dynos().get("worker.1")) and d.state == "up" and d,
                "worker.1 up on the released version",
            )

    asyncio.run(scenario())
    release = world.release_row(version)
    assert release.status == "succeeded"
    assert release.output == "migrating db\n"
    assert world.log.messages(f"release.{version}", "app") == ["migrating db"]
    kapal = world.log.messages(f"release.{version}", "kapal")
    assert kapal[0] == "Starting process with command `echo migrating $FOO`"
    assert "Process exited with status 0" in kapal
    # The release phase ran before any dyno of the release started.
    first = next(i for i, line in enumerate(world.log.lines) if line.dyno == "worker.1")
    last = max(i for i, line in enumerate(world.log.lines) if line.dyno == f"release.{version}")
    assert last < first


def test_release_phase_failure_keeps_the_release_out(world: World) -> None:
    live = world.release(world.slug({"worker": "echo v1; exec sleep 600"}))
    world.scale("worker", 1)

    async def scenario() -> int:
        async with running(world) as agent:
            await world.eventually(
                lambda: (d := world.dynos().get("worker.1")) and d.state == "up", "worker.1 up"
            )
            bad = world.release(
                world.slug({"worker": "exec sleep 600"}),
                release_command="echo cannot migrate >&2; exit 2",
            )
            await world.eventually(
                lambda: world.release_row(bad).status != "pending", "the release phase to end"
            )
            passes = agent.loop.passes
            await world.eventually(lambda: agent.loop.passes >= passes + 3, "three more passes")
            assert world.dynos()["worker.1"].release_version == live
            return bad

    bad = asyncio.run(scenario())
    release = world.release_row(bad)
    assert release.status == "failed"
    assert release.output == "cannot migrate\n"
    assert "Process exited with status 2" in world.log.messages(f"release.{bad}", "kapal")


def test_pending_releases_run_in_order_and_time_out(world: World) -> None:
    first = world.release(world.slug({"web": "x"}), release_command="exec sleep 600")
    second = world.release(world.slug({"web": "x"}), release_command="echo second")

    async def scenario() -> None:
        async with running(world, limits=Limits(release_timeout=0.5, release_output=1024)):
            await world.eventually(
                lambda: world.release_row(second).status != "pending", "both release phases"
            )

    asyncio.run(scenario())
    timed_out = world.release_row(first)
    assert timed_out.status == "failed"
    assert "Release command timed out after 0.5 seconds" in timed_out.output
    assert world.release_row(second).status == "succeeded"
    order = [line.dyno for line in world.log.lines if line.message.startswith("Starting process")]
    assert order == [f"release.{first}", f"release.{second}"]
