"""What each kind of dyno does around its process.

Formation dynos crash into a back-off, release-phase dynos decide their release's fate,
one-off dynos end their row. A lifecycle that leaves its dyno `crashed` or `exited` keeps it
as a record for the planner (a back-off to honour, a finished run not to repeat); in any
other state the supervisor forgets the dyno when the lifecycle returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kapal.domain.rendezvous import Size
from kapal.runtime.backoff import Backoff
from kapal.runtime.driver import Process
from kapal.runtime.dyno import IO, Dyno, pick_port
from kapal.runtime.environment import dyno_env
from kapal.runtime.gateway import Gateway
from kapal.runtime.healthcheck import read_healthchecks
from kapal.runtime.output import Dropped, TailBuffer, overflow_notice, read_output
from kapal.runtime.slugs import SlugCache, SlugError
from kapal.runtime.state import ReleaseSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    release_timeout: float = 3600.0  # Heroku: the release phase may take an hour
    release_output: int = 64 * 1024  # bytes of release-phase output kept in releases.output


@dataclass(frozen=True, slots=True)
class Attached:
    """The client of an attached one-off: `stream` bridges the process's I/O to it, and it
    may ask for a terminal of `tty` (rows, columns). It is the dyno's IO itself."""

    stream: IO
    tty: Size | None = None

    async def __call__(self, process: Process) -> None:
        await self.stream(process)


def log_lines(dyno: Dyno, tail: TailBuffer | None = None) -> IO:
    """The dyno's stdout and stderr, line by line, into its log (and `tail`); lines it
    writes faster than the log takes them are dropped and counted (L12)."""

    def line(raw: bytes) -> None:
        dyno.log.output(raw)
        if tail is not None:
            tail.write(raw + b"\n")

    def dropped(gap: Dropped) -> None:
        message = overflow_notice(dyno.name, gap.lines, gap.since)
        dyno.log.platform(message)
        if tail is not None:
            tail.write(f"{message}\n".encode())

    async def pump(process: Process) -> None:
        streams = [stream for stream in (process.stdout, process.stderr) if stream is not None]
        await read_output(streams, line, dropped)

    return pump


class Lifecycles:
    def __init__(
        self,
        *,
        slugs: SlugCache,
        gateway: Gateway,
        backoff: Backoff,
        limits: Limits,
        ports_in_use: Callable[[], set[int]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slugs = slugs
        self.gateway = gateway
        self.store = gateway.store
        self.backoff = backoff
        self.limits = limits
        self.ports_in_use = ports_in_use
        self.clock = clock

    async def _prepare(
        self, dyno: Dyno, release: ReleaseSpec | None, web: bool = False
    ) -> tuple[Path, dict[str, str]]:
        if release is None or release.slug_checksum is None:
            raise SlugError(f"Error R99 (Platform error) -> v{dyno.release_version} has no slug")
        unpacked = await self.slugs.ensure(
            release.app_id, release.version, release.slug_checksum, release.uid
        )
        dyno.uid = release.uid
        if web:
            # Read for each new dyno, as app.json may change with any deploy.
            dyno.checks = await asyncio.to_thread(read_healthchecks, unpacked, dyno.type)
            dyno.port = pick_port(self.ports_in_use())
        env = dyno_env(
            release.config,
            dyno=dyno.name,
            home=dyno.driver.home(unpacked),
            port=dyno.port,
            ram_mb=dyno.driver.limits(dyno.size).memory >> 20,
        )
        return unpacked, env

    async def formation(self, dyno: Dyno, release: ReleaseSpec) -> None:
        if dyno.crashes:
            dyno.log.platform("State changed from crashed to starting")
        web = dyno.type == "web"
        status: int | None = None
        try:
            home, env = await self._prepare(dyno, release, web)
            status = await dyno.run(home, env, log_lines(dyno), web=web)
        except SlugError as exc:
            dyno.log.platform(str(exc))
        if not dyno.stopping:
            self.crashed(dyno)
            logger.info("%s of %s crashed (status %s)", dyno.name, dyno.app_id, status)

    def crashed(self, dyno: Dyno) -> None:
        """Any exit of a formation dyno is a crash, even status 0: it restarts after a back-off."""
        was = dyno.state
        now = self.clock()
        up_for = now - dyno.up_at if dyno.up_at is not None else None
        dyno.crashes = self.backoff.crashes_after_exit(dyno.crashes, up_for)
        dyno.retry_at = now + self.backoff.delay(dyno.crashes)
        dyno.state = "crashed"
        dyno.log.platform(f"State changed from {was} to crashed")

    async def release_phase(self, dyno: Dyno, release: ReleaseSpec) -> None:
        tail = TailBuffer(self.limits.release_output)
        timeout = self.limits.release_timeout
        timer = asyncio.get_running_loop().call_later(timeout, dyno.request_stop, "timeout")
        status: int | None = None
        try:
            home, env = await self._prepare(dyno, release)
            status = await dyno.run(home, env, log_lines(dyno, tail))
        except SlugError as exc:
            dyno.log.platform(str(exc))
            tail.write(f"{exc}\n".encode())
        finally:
            timer.cancel()
        if dyno.stop_reason == "timeout":
            message = f"Release command timed out after {timeout:g} seconds"
            dyno.log.platform(message)
            tail.write(f"{message}\n".encode())
        elif dyno.stopping:
            return  # the agent is going down (it runs again next time) or the app went away
        succeeded = status == 0 and dyno.stop_reason is None
        await self.gateway.call(
            self.store.finish_release, release.app_id, release.version, succeeded, tail.text()
        )
        dyno.state = "exited"
        outcome = "succeeded" if succeeded else "failed"
        logger.info("release phase of %s v%d %s", release.app_id, release.version, outcome)

    async def one_off(self, dyno: Dyno, release: ReleaseSpec | None, io: IO | None = None) -> None:
        """Detached (output to the log), or attached through `io`: with a terminal if it is
        an `Attached` that asks for one, else with stdin piped and stderr merged."""
        attached = io is not None
        output = io or log_lines(dyno)
        tty = io.tty if isinstance(io, Attached) else None

        async def started(process: Process) -> None:
            await self.gateway.call(self.store.one_off_started, dyno.app_id, dyno.name, process.pid)
            await output(process)

        try:
            home, env = await self._prepare(dyno, release)
            await dyno.run(home, env, started, stdin=attached, merge_stderr=attached, tty=tty)
            dyno.log.platform(f"State changed from {dyno.state} to complete")
        except SlugError as exc:
            dyno.log.platform(str(exc))
        finally:
            dyno.state = "exited"  # one-off dynos never restart
            await self.gateway.call(self.store.one_off_finished, dyno.app_id, dyno.name)
