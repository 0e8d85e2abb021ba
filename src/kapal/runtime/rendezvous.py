"""The rendezvous: where `kapal run` / `heroku run` clients attach to one-off dynos.

The client connects over TLS (the Heroku CLI insists on it; the first byte of its ClientHello,
0x16, tells it apart) or plain TCP (`kapal run`) and sends `<secret>[ exit-status]\\r\\n`; the
agent answers one greeting line (which the client discards), starts the dyno and bridges the
socket to its terminal, or to its stdin and its stdout+stderr (kapal.domain.rendezvous has
the wire protocol). Without a terminal, a `\\x04` from the client ends the dyno's stdin (how
the Heroku CLI sends EOF); the client closing the connection hangs the dyno up. When the
dyno's output ends, the agent sends its exit status if asked, then closes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import signal
import socket
import ssl
from collections.abc import Mapping

from kapal.domain.rendezvous import (
    EOT,
    EXIT_STATUS,
    ResizeFilter,
    Size,
    launch_of,
    parse_secret_line,
    status_trailer,
)
from kapal.runtime import terminal
from kapal.runtime.driver import Process
from kapal.runtime.dyno import Dyno
from kapal.runtime.gateway import Gateway
from kapal.runtime.lifecycles import Attached
from kapal.runtime.state import OneOffSpec
from kapal.runtime.supervisor import Supervisor

logger = logging.getLogger(__name__)

GREETING = b"rendezvous\r\n"
TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS record carrying a ClientHello
_CHUNK = 65536
_SECRET_LIMIT = 64 * 1024  # the secret carries the dyno's extra environment (at most 32 KB)
_ESCAPE_WAIT = 0.05  # a lone ESC waits this long for the rest of a resize sequence


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Rendezvous:
    def __init__(
        self,
        gateway: Gateway,
        supervisor: Supervisor,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        greeting_pause: float = 0.3,
        hangup_grace: float = 5.0,
        secret_timeout: float = 30.0,
        linger: float = 2.0,
    ) -> None:
        self.gateway = gateway
        self.supervisor = supervisor
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        # The Heroku CLI drops its whole first read: the greeting must arrive on its own.
        self.greeting_pause = greeting_pause
        self.hangup_grace = hangup_grace
        self.secret_timeout = secret_timeout
        self.linger = linger
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        listener = socket.create_server((self.host, self.port), backlog=128)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accepting = asyncio.get_running_loop().create_task(self._accept(listener))
        logger.info("rendezvous listening on %s:%d", self.host, self.port)

    def close(self) -> None:
        """Stop accepting; sessions under way go on to their end."""
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def run(self) -> None:
        """Start, then serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.close()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listener)
            except OSError as exc:  # out of descriptors, say: the next one may work
                logger.warning("rendezvous: accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._connection(sock))
            self._sessions.add(task)
            task.add_done_callback(self._sessions.discard)

    async def _connection(self, sock: socket.socket) -> None:
        """Speak TLS to a client whose first byte opens a handshake, plain TCP to the rest."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.secret_timeout):
                await _readable(loop, sock)
                first = sock.recv(1, socket.MSG_PEEK)
                tls = self.ssl_context if first == TLS_HANDSHAKE else None
                reader = asyncio.StreamReader(limit=_SECRET_LIMIT)
                protocol = asyncio.StreamReaderProtocol(reader)
                transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock, ssl=tls)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            logger.info("rendezvous: connection dropped before the secret: %s", exc)
            sock.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await self._handle(reader, writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.secret_timeout):
                line = await reader.readuntil(b"\n")
            secret, options = parse_secret_line(line)
            try:
                launch = launch_of(secret)
            except ValueError as exc:  # not a secret the API made: it matches no dyno
                logger.info("rendezvous: %s", exc)
                return
            spec = await self.gateway.call(self.gateway.store.claim_attach, secret_hash(secret))
            if spec is None:
                logger.info("rendezvous: no dyno waits for the secret presented")
                return
            writer.write(GREETING)
            await writer.drain()
            # Heroku's CLI loses output that arrives with the greeting: the dyno starts now,
            # its output waits out the pause. Kapal's own client (it asks for the exit
            # status) reads the greeting as a line and needs no pause.
            pause = 0.0 if EXIT_STATUS in options else self.greeting_pause
            speak_at = asyncio.get_running_loop().time() + pause
            session = _Session(reader, writer, self.hangup_grace, launch.tty, speak_at)
            async with asyncio.TaskGroup() as tasks:
                upstream = tasks.create_task(session.upstream())
                await self.supervisor.attach(_with_env(spec, launch.env), session.attached)
                status = session.dyno.exit_status if session.dyno is not None else None
                await session.finish(
                    upstream, self.linger, status if EXIT_STATUS in options else None
                )
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.LimitOverrunError:
            logger.info("rendezvous: secret line too long")
        except Exception:
            logger.exception("rendezvous session failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Wait until `sock` has a byte to read (or its peer closed it)."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock, wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock)


def _input(
    process: Process, typed: ResizeFilter | None, received: bytes | None
) -> tuple[bytes, bool]:
    """What goes to the dyno of what the client sent (None: it paused), and whether its stdin
    ends there. A terminal gets every byte but the resizes, which it takes."""
    if typed is None:
        data, eot, _ = (received or b"").partition(EOT)
        return data, bool(eot)
    data, sizes = typed.feed(received) if received is not None else (typed.flush(), [])
    for size in sizes:
        terminal.resize(process, size)
    return data, False


def _with_env(spec: OneOffSpec, env: Mapping[str, str]) -> OneOffSpec:
    """The one-off with the client's environment variables over its release's config vars."""
    if not env or spec.release is None:
        return spec
    release = dataclasses.replace(spec.release, config={**spec.release.config, **env})
    return dataclasses.replace(spec, release=release)


class _Session:
    """One attached client: its bytes to the dyno's terminal or stdin, the dyno's output to it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        hangup_grace: float,
        tty: Size | None,
        speak_at: float = 0.0,
    ) -> None:
        self.speak_at = speak_at  # loop time before which nothing is written after the greeting
        self.reader = reader
        self.writer = writer
        self.hangup_grace = hangup_grace
        self.tty = tty
        self.dyno: Dyno | None = None
        self.process: Process | None = None
        self.ready = asyncio.Event()
        self.gone = asyncio.Event()
        self.client_ok = True

    def attached(self, dyno: Dyno) -> Attached:
        self.dyno = dyno

        async def bridge(process: Process) -> None:
            self.process = process
            self.ready.set()
            async with asyncio.TaskGroup() as tasks:
                hangup = tasks.create_task(self._hang_up_when_gone(dyno, process))
                await self._downstream(process)
                hangup.cancel()

        return Attached(bridge, self.tty)

    async def upstream(self) -> None:
        """Client -> terminal or stdin until the client goes away. To a terminal, every byte
        but the in-band resizes; to stdin, `\\x04` closes it."""
        stdin_open = True
        typed = ResizeFilter() if self.tty is not None else None
        try:
            await self.ready.wait()
            process = self.process
            assert process is not None
            stdin = process.stdin
            while (received := await self._read(typed)) != b"":
                if not stdin_open or stdin is None:
                    continue  # keep reading: unread input would make our close a reset
                data, end = _input(process, typed, received)
                try:
                    if data:
                        stdin.write(data)
                        await stdin.drain()
                    if end:
                        stdin_open = False
                        stdin.close()
                except OSError:
                    stdin_open = False  # the command stopped reading: drop the rest
        except OSError:
            pass  # the client is gone
        finally:
            self.gone.set()

    async def _read(self, typed: ResizeFilter | None) -> bytes | None:
        """The client's next bytes (b"" at the end), or None when it paused while `typed`
        holds back what may be the start of a resize."""
        if typed is None or not typed.pending:
            return await self.reader.read(_CHUNK)
        try:
            async with asyncio.timeout(_ESCAPE_WAIT):
                return await self.reader.read(_CHUNK)
        except TimeoutError:
            return None

    async def _downstream(self, process: Process) -> None:
        assert process.stdout is not None
        chunk = await process.stdout.read(_CHUNK)
        await asyncio.sleep(max(0.0, self.speak_at - asyncio.get_running_loop().time()))
        while chunk:
            # Nobody listening: keep reading, the dyno must not block on a full pipe.
            if self.client_ok:
                try:
                    self.writer.write(chunk)
                    await self.writer.drain()
                except OSError:
                    self.client_ok = False
            chunk = await process.stdout.read(_CHUNK)

    async def _hang_up_when_gone(self, dyno: Dyno, process: Process) -> None:
        await self.gone.wait()
        if process.returncode is not None:
            return
        dyno.log.platform("Client connection closed. Sending SIGHUP to all processes")
        dyno.driver.signal(process, signal.SIGHUP)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.hangup_grace):
                await process.wait()
                return
        dyno.log.platform(
            "Error R16 (Detached) -> An attached process is not responding to SIGHUP after "
            "its external connection was closed."
        )
        dyno.request_stop("detached")

    async def finish(self, upstream: asyncio.Task[None], linger: float, status: int | None) -> None:
        """Output is over: send the exit status if there is one to report, tell the client,
        then read what it still sends (at least its `\\x04`) before closing, since closing
        with unread input resets the connection."""
        if self.client_ok:
            with contextlib.suppress(OSError):
                if status is not None:
                    self.writer.write(status_trailer(status))
                    await self.writer.drain()
                if self.writer.can_write_eof():
                    self.writer.write_eof()
        if not self.ready.is_set():
            upstream.cancel()  # the dyno never started
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(linger):
                await asyncio.shield(upstream)
        upstream.cancel()
