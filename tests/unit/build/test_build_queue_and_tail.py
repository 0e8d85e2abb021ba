from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kapal.build.queue import build_queue
from kapal.build.sources import SourceTooLarge, receive
from kapal.build.tail import follow


def test_the_queue_runs_at_most_its_concurrency_and_survives_failures() -> None:
    async def scenario() -> tuple[int, list[str]]:
        release = asyncio.Event()
        running = 0
        most = 0
        done: list[str] = []

        async def job(name: str) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1
            if name == "bad":
                raise RuntimeError("this build crashed")
            done.append(name)

        async with build_queue(concurrency=2) as queue:
            waits = []
            for name in ("a", "bad", "c", "d"):
                waits.append(queue.must_wait_for())
                queue.submit(name, lambda name=name: job(name))  # type: ignore[misc]
            assert waits == [0, 0, 1, 2]  # c waits for one of a and bad; d for two jobs
            while running < 2:
                await asyncio.sleep(0)
            for _ in range(20):  # the others are waiting for a slot, not running
                await asyncio.sleep(0)
            assert running == 2
            release.set()
            while queue.running:
                await asyncio.sleep(0.01)
        return most, done

    most, done = asyncio.run(scenario())
    assert most == 2
    assert sorted(done) == ["a", "c", "d"]


def test_jobs_still_running_at_the_end_are_cancelled() -> None:
    async def scenario() -> bool:
        cancelled = asyncio.Event()

        async def forever() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        async with build_queue() as queue:
            queue.submit("forever", forever)
            await asyncio.sleep(0)
        return cancelled.is_set()

    assert asyncio.run(scenario())


def test_follow_streams_a_growing_file_until_finished(tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    log.write_bytes(b"first\n")

    async def scenario() -> list[bytes]:
        state = {"finished": False}
        seen: list[bytes] = []

        async def finished() -> bool:
            return state["finished"]

        async def writer() -> None:
            while not seen:
                await asyncio.sleep(0.01)
            with log.open("ab") as file:
                file.write(b"second\n")
            state["finished"] = True  # written before finished, as the builder does

        async with asyncio.TaskGroup() as group:
            group.create_task(writer())
            async for chunk in follow(log, finished, poll=0.01):
                seen.append(chunk)
        return seen

    assert b"".join(asyncio.run(scenario())) == b"first\nsecond\n"


def test_receive_refuses_uploads_over_the_limit(tmp_path: Path) -> None:
    async def chunks(sizes: list[int]) -> AsyncIterator[bytes]:
        for size in sizes:
            yield b"x" * size

    target = tmp_path / "sources" / "s.tar.gz"
    assert asyncio.run(receive(target, chunks([10, 10]), max_bytes=20)) == 20
    assert target.read_bytes() == b"x" * 20
    with pytest.raises(SourceTooLarge, match="larger than the limit"):
        asyncio.run(receive(target, chunks([10, 11]), max_bytes=20))
    assert target.read_bytes() == b"x" * 20  # the earlier upload is untouched
    assert [p.name for p in target.parent.iterdir()] == ["s.tar.gz"]
