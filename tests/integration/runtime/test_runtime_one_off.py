"""One-off dynos: detached ones log their output; attached ones stream through the rendezvous."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import socket
import ssl
from pathlib import Path

from tests.integration.runtime.harness import World, running

from kapal.cli.attach import pump, skip_greeting
from kapal.domain.rendezvous import secret_line
from kapal.router.localcerts import platform_certificate

MARKER = "\uffff kapal-command-exit-status:"


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def attach(port: int, secret: str, stdin: bytes = b"") -> tuple[bytes, bytes]:
    """Connect like the CLI: secret line, greeting, then stdin + EOT; returns (greeting, output)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{secret}\r\n".encode())
        greeting = await reader.readline()
        writer.write(stdin + b"\x04")
        await writer.drain()
        output = await reader.read()  # until the agent closes
        return greeting, output
    finally:
        writer.close()
        await writer.wait_closed()


def test_detached_one_off_logs_its_output(world: World) -> None:
    version = world.release(world.slug({"web": "x"}), {"WHO": "kapal"})
    world.one_off("run.1234", "echo hello $WHO from $DYNO", version)

    async def scenario() -> None:
        async with running(world):
            await world.eventually(lambda: "run.1234" not in world.dynos(), "the row removed")

    asyncio.run(scenario())
    assert world.log.messages("run.1234", "app") == ["hello kapal from run.1234"]
    assert world.log.messages("run.1234", "kapal") == [
        "Starting process with command `echo hello $WHO from $DYNO`",
        "State changed from starting to up",
        "Process exited with status 0",
        "State changed from up to complete",
    ]


def test_attached_one_off_streams_output_and_exit_status(world: World) -> None:
    version = world.release(world.slug({"web": "x"}))
    command = f'read line; echo "got $line"; echo oops >&2; (exit 7); echo "{MARKER} $?"'
    world.one_off("run.2001", command, version, attach_hash=sha("s3cret"))

    async def scenario() -> tuple[bytes, bytes]:
        async with running(world) as agent:
            result = await attach(agent.rendezvous.port, "s3cret", b"hello\n")
            await world.eventually(lambda: "run.2001" not in world.dynos(), "the row removed")
            return result

    greeting, output = asyncio.run(scenario())
    assert greeting == b"rendezvous\r\n"
    assert output.decode() == f"got hello\noops\n{MARKER} 7\n"
    # Attached output goes to the client, not to the log; lifecycle lines do.
    assert world.log.messages("run.2001", "app") == []
    kapal = world.log.messages("run.2001", "kapal")
    assert kapal[0] == f"Starting process with command `{command}`"
    assert "Process exited with status 0" in kapal


def test_the_cli_client_gets_output_and_status(world: World) -> None:
    version = world.release(world.slug({"web": "x"}))
    # The agent reports the status, so a command that ends its shell has one too.
    world.one_off("run.2002", "cat; exit 3", version, attach_hash=sha("cli"))

    def client(port: int) -> tuple[int | None, bytes]:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(secret_line("cli", exit_status=True))
            first = skip_greeting(sock)
            assert first is not None
            out = io.BytesIO()
            status = pump(sock, first, io.BytesIO(b"piped input\n"), out)
            return status, out.getvalue()

    async def scenario() -> tuple[int | None, bytes]:
        async with running(world) as agent:
            return await asyncio.to_thread(client, agent.rendezvous.port)

    status, output = asyncio.run(scenario())
    assert (status, output) == (3, b"piped input\n")


def test_wrong_secret_gets_nothing(world: World) -> None:
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.2003", "echo no", version, attach_hash=sha("right"))

    async def scenario() -> tuple[bytes, bytes]:
        async with running(world) as agent:
            return await attach(agent.rendezvous.port, "wrong")

    assert asyncio.run(scenario()) == (b"", b"")
    assert world.dynos()["run.2003"].state == "starting"


def test_client_disconnect_hangs_up_the_dyno(world: World) -> None:
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.2004", "exec sleep 600", version, attach_hash=sha("bye"))

    async def scenario() -> None:
        async with running(world) as agent:
            reader, writer = await asyncio.open_connection("127.0.0.1", agent.rendezvous.port)
            writer.write(b"bye\r\n")
            assert await reader.readline() == b"rendezvous\r\n"
            await world.eventually(
                lambda: (d := world.dynos().get("run.2004")) and d.pid, "the dyno running"
            )
            writer.close()
            await writer.wait_closed()
            await world.eventually(lambda: "run.2004" not in world.dynos(), "the row removed")

    asyncio.run(scenario())
    messages = world.log.messages("run.2004", "kapal")
    assert "Client connection closed. Sending SIGHUP to all processes" in messages
    assert "Process exited with status 129" in messages


def test_unattached_one_offs_expire(world: World) -> None:
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.2005", "echo never", version, attach_hash=sha("late"))

    async def scenario() -> None:
        async with running(world, attach_ttl=0.2):
            await world.eventually(lambda: "run.2005" not in world.dynos(), "the row removed")

    asyncio.run(scenario())
    assert world.log.messages("run.2005") == [
        "Error R13 (Attach error) -> Failed to attach to process"
    ]


def test_herokus_client_gets_the_greeting_on_its_own(world: World) -> None:
    """Heroku's CLI drops output that arrives in the same read as the greeting: the dyno's
    first output waits out the pause (while the dyno starts), so the first read is the
    greeting alone."""
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.2101", "echo at-once", version, attach_hash=sha("pause"))

    async def scenario() -> tuple[bytes, bytes]:
        async with running(world, greeting_pause=1.0) as agent:
            reader, writer = await asyncio.open_connection("127.0.0.1", agent.rendezvous.port)
            try:
                writer.write(b"pause\r\n")
                first = await reader.read(1024)
                rest = await reader.read()
                return first, rest
            finally:
                writer.close()
                await writer.wait_closed()

    first, rest = asyncio.run(scenario())
    assert first == b"rendezvous\r\n"
    assert rest == b"at-once\n"


def test_tls_and_plain_clients_share_the_rendezvous_port(world: World, tmp_path: Path) -> None:
    """The Heroku CLI opens TLS and checks the certificate against localhost (the platform's
    one from Kapal's CA); `kapal run` speaks plain TCP to the same port."""
    certificate = platform_certificate(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(certificate)
    client_side = ssl.create_default_context(cafile=tmp_path / "ca.pem")  # verifies the name
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.2201", "cat", version, attach_hash=sha("over-tls"))
    world.one_off("run.2202", "echo plain", version, attach_hash=sha("in-clear"))

    async def scenario() -> tuple[bytes, bytes, bytes]:
        async with running(world, ssl_context=server_side) as agent:
            port = agent.rendezvous.port
            reader, writer = await asyncio.open_connection(
                "localhost", port, ssl=client_side, server_hostname="localhost"
            )
            try:
                writer.write(b"over-tls\r\n")
                greeting = await reader.readline()
                writer.write(b"typed\n\x04")
                echoed = await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(ssl.SSLError, ConnectionError):
                    await writer.wait_closed()
            _, plain = await attach(port, "in-clear")
            return greeting, echoed, plain

    greeting, echoed, plain = asyncio.run(scenario())
    assert greeting == b"rendezvous\r\n"
    assert echoed == b"typed\n"
    assert plain == b"plain\n"


def test_a_client_that_never_speaks_or_fails_the_handshake_is_dropped(
    world: World, tmp_path: Path
) -> None:
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(platform_certificate(tmp_path))
    version = world.release(world.slug({"web": "x"}))
    world.one_off("run.2203", "echo still-served", version, attach_hash=sha("after"))

    async def scenario() -> tuple[bytes, bytes]:
        async with running(world, ssl_context=server_side, secret_timeout=0.5) as agent:
            port = agent.rendezvous.port
            silent = socket.create_connection(("127.0.0.1", port))
            garbage = socket.create_connection(("127.0.0.1", port))
            garbage.sendall(b"\x16\x03\x01\x00\x05hello")  # a handshake record, then nonsense
            loop = asyncio.get_running_loop()
            dropped = await loop.run_in_executor(None, until_closed, silent)
            await loop.run_in_executor(None, until_closed, garbage)  # a TLS alert at most
            _, output = await attach(port, "after")
            return dropped, output

    dropped, output = asyncio.run(scenario())
    assert dropped == b""
    assert output == b"still-served\n"


def until_closed(sock: socket.socket) -> bytes:
    """What the peer sent before it closed the connection (within 10 s)."""
    sock.settimeout(10)
    received = b""
    with sock:
        while chunk := sock.recv(4096):
            received += chunk
    return received
