"""A dyno's stdout and stderr are real pipes of 1 MiB, read by the agent's event loop (the
default one and uvloop, which runs the agent), and let go of when the dyno ends, even while a
process it left behind still holds them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Coroutine
from contextlib import suppress
from typing import Any, TypeVar

import pytest
import uvloop
from tests.integration.runtime.harness import World, running

from kapal.runtime.pipes import PIPE_SIZE

T = TypeVar("T")
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
# What a dyno finds its stdout and stderr to be.
PIPES = (
    "import fcntl, os, stat, sys\n"
    "for fd in 1, 2:\n"
    "    kind = 'pipe' if stat.S_ISFIFO(os.fstat(fd).st_mode) else 'not a pipe'\n"
    "    out = sys.stdout if fd == 1 else sys.stderr\n"
    "    print(fd, kind, fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ), file=out)\n"
)
WORKER = "while :; do echo working; sleep 0.05; done"
# A process that leaves the dyno's session, holding its pipes, until the test kills it.
STRAY = "setsid sleep 600 & echo stray $!; echo left"


def run(loop: str, scenario: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(scenario)


def open_fds() -> dict[int, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the directory's own descriptor, closed by now
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return found


async def attach(port: int, secret: str) -> bytes:
    """An attached one-off's output, as a client without a terminal gets it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{secret}\r\n".encode())
        assert await reader.readline() == b"rendezvous\r\n"
        writer.write(b"\x04")
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("loop", LOOPS)
def test_dyno_output_comes_through_pipes_of_a_mebibyte(world: World, loop: str) -> None:
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.1", f'python3 -c "{PIPES}"', version)

    async def scenario() -> None:
        async with running(world):
            await world.eventually(lambda: "run.1" not in world.dynos(), "run.1 done")

    run(loop, scenario())
    assert sorted(world.log.messages("run.1", "app")) == [
        f"1 pipe {PIPE_SIZE}",
        f"2 pipe {PIPE_SIZE}",
    ]


@pytest.mark.parametrize("loop", LOOPS)
def test_dynos_leave_no_descriptor_open_in_the_agent(world: World, loop: str) -> None:
    version = world.release(world.slug({"worker": WORKER}))
    world.one_off("run.1", "echo warming up", version)

    async def scenario() -> tuple[dict[int, str], dict[int, str]]:
        async with running(world) as agent:
            await world.eventually(lambda: "run.1" not in world.dynos(), "run.1 done")
            before = open_fds()
            world.scale("worker", 2)
            world.one_off("run.2", STRAY, version)
            world.one_off("run.3", "echo attached", version, hashlib.sha256(b"pipes").hexdigest())
            assert await attach(agent.rendezvous.port, "pipes") == b"attached\n"
            await world.eventually(
                lambda: len(world.log.messages("worker.2", "app")) > 2, "worker.2 writing"
            )
            world.scale("worker", 0)
            await world.eventually(lambda: not world.dynos(), "every dyno gone")
            with suppress(AssertionError):
                await world.eventually(lambda: open_fds() == before, "the descriptors closed")
            return before, open_fds()

    try:
        before, after = run(loop, scenario())
    finally:
        for message in world.log.messages("run.2", "app"):
            if message.startswith("stray "):
                with suppress(ProcessLookupError):
                    os.kill(int(message.split()[1]), signal.SIGKILL)
    stray, left = world.log.messages("run.2", "app")
    assert stray.startswith("stray ") and left == "left"
    opened = {fd: target for fd, target in after.items() if before.get(fd) != target}
    closed = {fd: target for fd, target in before.items() if after.get(fd) != target}
    assert (opened, closed) == ({}, {})
