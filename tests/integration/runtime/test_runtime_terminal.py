"""`kapal run bash`: an attached one-off with a terminal, driven through the real rendezvous
as Kapal's CLI drives it (keys, in-band resizes, the exit status the agent reports), on the
default event loop and on uvloop, which runs the agent."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop
from tests.integration.runtime.harness import World, add_demo_app, open_settings, running

from kapal.domain.rendezvous import (
    Launch,
    attach_secret,
    resize_sequence,
    secret_line,
    status_trailer,
)
from kapal.store.db import Store
from kapal.system_users import RunAs

T = TypeVar("T")
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run(loop: str, scenario: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(scenario)


def one_off(world: World, name: str, command: str, launch: Launch) -> str:
    """A one-off waiting for a client; returns the secret to present."""
    secret = attach_secret(f"token-{name}", launch)
    version = world.release(world.slug({"web": "x"}), {"FROM_CONFIG": "config"})
    world.one_off(name, command, version, hashlib.sha256(secret.encode()).hexdigest())
    return secret


class Client:
    """The client end of a rendezvous connection: what it received so far, searchable."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.output = bytearray()
        self.seen = 0  # `expect` looks for what came after the last match

    @classmethod
    async def attach(cls, port: int, secret: str) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(secret_line(secret, exit_status=True))
        assert await reader.readline() == b"rendezvous\r\n"
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, pattern: bytes, timeout: float = 20.0) -> re.Match[bytes]:
        """Read until `pattern` (a regex) shows up in what was not matched yet."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = re.compile(pattern).search(self.output, self.seen)
                    if found:
                        self.seen = found.end()
                        return found
                    chunk = await self.reader.read(4096)
                    assert chunk, f"closed before {pattern!r}; got {bytes(self.output)!r}"
                    self.output += chunk
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} in {bytes(self.output)!r}") from None

    async def rest(self) -> bytes:
        """Everything until the agent closes the connection."""
        async with asyncio.timeout(20):
            self.output += await self.reader.read()
        self.writer.close()
        await self.writer.wait_closed()
        return bytes(self.output[self.seen :])


def in_session(leader: int, name: str) -> bool:
    """Whether a process called `name` runs in the session `leader` leads."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, NotADirectoryError):
            continue
        command, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1]
        if command == name and int(fields.split()[3]) == leader:
            return True
    return False


async def shell_session(world: World, port: int, secret: str, name: str) -> bytes:
    """Drive an interactive bash; returns what came after `exit 5`."""
    client = await Client.attach(port, secret)
    await client.expect(rb"[#$] ")  # the outer `bash -c` drops PS1: set it once it prompts
    await client.send(b"PS1='kap''al$ '\r")
    await client.expect(rb"kapal\$ ")
    await client.send(b"tty; stty size; echo $FOO-$FROM_CONFIG-$TERM\r")
    await client.expect(rb"/dev/pts/\d+\r\n30 100\r\nbar-config-xterm-256color\r\n")

    # A resize sent in-band: the size changes and the foreground process gets SIGWINCH.
    await client.send(b'sh -c \'trap "echo winched; stty size; exit" WINCH; echo re""ady; ')
    await client.send(b"while :; do sleep 0.05; done'\r")
    await client.expect(rb"ready\r\n")
    await client.send(resize_sequence((40, 120)))
    await client.expect(rb"winched\r\n40 120\r\n")
    await client.expect(rb"kapal\$ ")

    # The Escape key alone gets through (held back only while it may start a resize).
    await client.send(b"read -rsn1 key; printf 'key=%q\\n' \"$key\"\r")
    await client.send(b"\x1b")
    await client.expect(rb"key=\$'\\E'\r\n")

    # Ctrl-C reaches the foreground process, not the shell.
    await client.send(b"sleep 100\r")
    pid = await world.eventually(lambda: world.dynos()[name].pid, "the dyno's pid")
    await world.eventually(lambda: in_session(pid, "sleep"), "sleep running")
    await client.send(b"\x03")
    await client.expect(rb"\^C")
    await client.send(b"echo still-$((40 + 2))\r")
    await client.expect(rb"still-42\r\n")

    await client.send(b"exit 5\r")
    return await client.rest()


@pytest.mark.parametrize("loop", LOOPS)
def test_interactive_shell_in_a_terminal(world: World, loop: str) -> None:
    env = {"FOO": "bar", "TERM": "xterm-256color"}
    secret = one_off(world, "run.3001", "bash", Launch((30, 100), env))

    async def scenario() -> bytes:
        async with running(world) as agent:
            rest = await shell_session(world, agent.rendezvous.port, secret, "run.3001")
            await world.eventually(lambda: "run.3001" not in world.dynos(), "the row removed")
            return rest

    rest = run(loop, scenario())
    assert rest.endswith(b"exit\r\n" + status_trailer(5)), rest
    assert "Process exited with status 5" in world.log.messages("run.3001", "kapal")


@pytest.mark.parametrize("loop", LOOPS)
def test_without_a_terminal(world: World, loop: str) -> None:
    command = "tty; cat; echo to-stderr >&2; exit 3"
    secret = one_off(world, "run.3002", command, Launch(None, {"FOO": "bar"}))

    async def scenario() -> bytes:
        async with running(world) as agent:
            client = await Client.attach(agent.rendezvous.port, secret)
            # No terminal: EOT ends stdin, and a resize sequence is just input.
            await client.send(resize_sequence((40, 120)) + b"piped\n\x04")
            return await client.rest()

    output = run(loop, scenario())
    assert output == b"not a tty\n\x1b[8;40;120tpiped\nto-stderr\n" + status_trailer(3)


def test_output_of_a_quick_command_is_all_there(world: World) -> None:
    """The terminal's last output is read before it reports the end (EIO)."""
    command = "seq 1 20000; exit 7"
    secret = one_off(world, "run.3003", command, Launch((24, 80)))

    async def scenario() -> bytes:
        async with running(world) as agent:
            return await (await Client.attach(agent.rendezvous.port, secret)).rest()

    output = run("uvloop", scenario())
    numbers = "\r\n".join(str(n) for n in range(1, 20001))
    assert output == f"{numbers}\r\n".encode() + status_trailer(7)


@pytest.fixture
def root_world(open_dir: Path) -> Iterator[World]:
    """A data directory the unprivileged dyno user can reach (pytest's are 0700)."""
    settings = open_settings(open_dir)
    store = Store.open(settings.database_url)
    app_id, user_id = add_demo_app(store)
    yield World(settings.data_dir, store, app_id, user_id)
    store.engine.dispose()


@pytest.mark.skipif(os.geteuid() != 0, reason="privileges are dropped only by a root agent")
def test_terminal_as_the_unprivileged_dyno_user(root_world: World) -> None:
    """The driver's preexec (dropping to kapal-dyno) still runs after the terminal's."""
    world = root_world
    command = "id -un; tty; stty size; exit 4"
    secret = one_off(world, "run.3004", command, Launch((33, 99)))
    run_as = RunAs.system("kapal-dyno")

    async def scenario() -> bytes:
        async with running(world, run_as=run_as) as agent:
            return await (await Client.attach(agent.rendezvous.port, secret)).rest()

    output = run("uvloop", scenario())
    trailer = status_trailer(4)
    assert output.endswith(trailer), output
    assert re.fullmatch(rb"kapal-dyno\r\n/dev/pts/\d+\r\n33 99\r\n", output[: -len(trailer)])
