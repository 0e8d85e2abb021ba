"""The rendezvous: where `kapal run` / `heroku run` clients attach to one-off dynos.

The client connects, sends `<secret>\\r\\n`; the agent answers one greeting line (which the
client discards), starts the dyno and bridges the socket to its stdin and its stdout+stderr.
A `\\x04` from the client ends the dyno's stdin (how the Heroku CLI sends EOF); the client
closing the connection hangs the dyno up. The socket closes when the dyno's output ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import ssl

from kapal.runtime.driver import Process
from kapal.runtime.dyno import IO, Dyno
from kapal.runtime.gateway import Gateway
from kapal.runtime.supervisor import Supervisor

logger = logging.getLogger(__name__)

GREETING = b"rendezvous\r\n"
EOT = b"\x04"
_CHUNK = 65536


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
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, ssl=self.ssl_context, limit=4096
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("rendezvous listening on %s:%d", self.host, self.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def run(self) -> None:
        """Start, then serve until cancelled."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.secret_timeout):
                line = await reader.readuntil(b"\n")
            secret = line.strip().decode("ascii", "replace").lstrip("/")
            spec = await self.gateway.call(self.gateway.store.claim_attach, secret_hash(secret))
            if spec is None:
                logger.info("rendezvous: no dyno waits for the secret presented")
                return
            writer.write(GREETING)
            await writer.drain()
            await asyncio.sleep(self.greeting_pause)
            session = _Session(reader, writer, self.hangup_grace)
            async with asyncio.TaskGroup() as tasks:
                upstream = tasks.create_task(session.upstream())
                await self.supervisor.attach(spec, session.io)
                await session.finish(upstream, self.linger)
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


class _Session:
    """One attached client: its bytes to the dyno's stdin, the dyno's output to it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hangup_grace: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.hangup_grace = hangup_grace
        self.process: Process | None = None
        self.ready = asyncio.Event()
        self.gone = asyncio.Event()
        self.client_ok = True

    def io(self, dyno: Dyno) -> IO:
        async def bridge(process: Process) -> None:
            self.process = process
            self.ready.set()
            async with asyncio.TaskGroup() as tasks:
                hangup = tasks.create_task(self._hang_up_when_gone(dyno, process))
                await self._downstream(process)
                hangup.cancel()

        return bridge

    async def upstream(self) -> None:
        """Client -> stdin until the client goes away; `\\x04` closes stdin."""
        stdin_open = True
        try:
            await self.ready.wait()
            assert self.process is not None
            stdin = self.process.stdin
            while data := await self.reader.read(_CHUNK):
                if not stdin_open or stdin is None:
                    continue  # keep reading: unread input would make our close a reset
                data, eot, _ = data.partition(EOT)
                try:
                    if data:
                        stdin.write(data)
                        await stdin.drain()
                    if eot:
                        stdin_open = False
                        stdin.close()
                except OSError:
                    stdin_open = False  # the command stopped reading: drop the rest
        except OSError:
            pass  # the client is gone
        finally:
            self.gone.set()

    async def _downstream(self, process: Process) -> None:
        assert process.stdout is not None
        while chunk := await process.stdout.read(_CHUNK):
            if not self.client_ok:
                continue  # nobody listens, but the dyno must not block on a full pipe
            try:
                self.writer.write(chunk)
                await self.writer.drain()
            except OSError:
                self.client_ok = False

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

    async def finish(self, upstream: asyncio.Task[None], linger: float) -> None:
        """Output is over: tell the client, then read what it still sends (at least its
        `\\x04`) before closing, since closing with unread input resets the connection."""
        if self.client_ok and self.writer.can_write_eof():
            with contextlib.suppress(OSError):
                self.writer.write_eof()
        if not self.ready.is_set():
            upstream.cancel()  # the dyno never started
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(linger):
                await asyncio.shield(upstream)
        upstream.cancel()
