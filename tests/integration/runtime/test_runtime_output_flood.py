"""A dyno that writes faster than the log takes lines is never blocked: what does not fit is
dropped and counted (L12), and every line written is either taken or counted."""

from __future__ import annotations

import asyncio
import re
import sys

from tests.integration.runtime.harness import Lines, World, running

from kapal.domain.logline import LogLine
from kapal.runtime.output import Dropped, read_output

LINES = 300_000
# Lines of about 100 bytes: a sequence number, then padding.
WRITER = f"""
import sys
write = sys.stdout.buffer.write
pad = b"x" * 90
for seq in range({LINES}):
    write(b"%07d %s\\n" % (seq, pad))
"""
L12 = re.compile(r"^Error L12 \(Local buffer overflow\) -> (\S+) dropped (\d+) lines since \S+$")


def slow(line: bytes) -> None:
    """A log that takes a line in tens of microseconds: far slower than the writer."""
    for _ in range(1_000):
        pass


def test_a_writer_faster_than_the_log_finishes_first_and_every_line_is_accounted_for() -> None:
    async def scenario() -> tuple[int, list[bytes], list[Dropped]]:
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={},
        )
        assert writer.stdout is not None and writer.stderr is not None
        taken: list[bytes] = []
        dropped: list[Dropped] = []

        def take(line: bytes) -> None:
            slow(line)
            taken.append(line)

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(read_output([writer.stdout, writer.stderr], take, dropped.append))
            assert await writer.wait() == 0
            taken_when_writer_ended = len(taken)
        return taken_when_writer_ended, taken, dropped

    taken_when_writer_ended, taken, dropped = asyncio.run(scenario())
    assert taken_when_writer_ended < LINES, "the writer waited for the log"
    assert dropped, "nothing was dropped: the log kept up with the writer"
    assert len(taken) + sum(gap.lines for gap in dropped) == LINES
    # What was taken is whole lines, in order.
    seqs = [int(line[:7]) for line in taken]
    assert all(line == b"%07d %s" % (seq, b"x" * 90) for seq, line in zip(seqs, taken, strict=True))
    assert seqs == sorted(set(seqs))


class SlowLines(Lines):
    def append(self, line: LogLine) -> None:
        if line.source == "app":
            slow(line.message.encode())
        super().append(line)


def test_a_flooding_one_off_gets_l12_lines_in_its_log(world: World) -> None:
    world.log = SlowLines()
    version = world.release(world.slug({}))
    world.one_off("run.1", f"python3 -c '{WRITER}'", version)

    async def scenario() -> None:
        async with running(world):
            await world.eventually(
                lambda: "State changed from up to complete" in world.log.messages("run.1"),
                "run.1 to complete",
                timeout=120,
            )

    asyncio.run(scenario())
    written = world.log.messages("run.1", "app")
    notices = [L12.match(m) for m in world.log.messages("run.1", "kapal") if "L12" in m]
    assert notices and all(notices), world.log.dump()
    assert {match[1] for match in notices if match} == {"run.1"}
    assert len(written) + sum(int(match[2]) for match in notices if match) == LINES
