"""One dyno process: start it, tell when it is up, stop it (SIGTERM, grace, SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kapal.domain.appjson import Healthcheck
from kapal.domain.rendezvous import Size
from kapal.runtime.driver import Driver, LaunchSpec, Process
from kapal.runtime.environment import dyno_argv
from kapal.runtime.healthcheck import probe
from kapal.runtime.output import DynoLog
from kapal.runtime.pipes import close_output

IO = Callable[[Process], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class Timing:
    boot_timeout: float = 60.0  # a web dyno must accept connections on $PORT by then (R10)
    stop_grace: float = 30.0  # SIGTERM, then SIGKILL after this (R12)
    poll: float = 0.025  # how often to try $PORT and to look for processes left
    drain: float = 1.0  # output still read after the main process exits
    memory_poll: float = 2.0  # how often a dyno's memory is sampled (R14, R15)
    r14_every: float = 20.0  # R14 is logged again this often while the dyno stays above
    # A web dyno the router may still send requests to is stopped only this long after the
    # store stopped listing it: the router reloads on a wake-up hint, at the latest every
    # second, and a request sent to a dyno shutting down fails (H13).
    unroute: float = 1.0


def exit_status(returncode: int) -> int:
    """The status a shell shows: 143 for SIGTERM, 137 for SIGKILL."""
    return 128 - returncode if returncode < 0 else returncode


def pick_port(avoid: set[int], host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's choice), not handed to another dyno."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise OSError("no free port found")


async def accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        try:
            async with asyncio.timeout(1.0):
                await loop.sock_connect(sock, (host, port))
        except (OSError, TimeoutError):
            return False
    return True


class Dyno:
    """A process of a release; its owner decides what an exit means (crash, done...)."""

    def __init__(
        self,
        *,
        id: int,
        kind: str,
        app_id: str,
        name: str,
        type: str,
        command: str,
        release_version: int,
        size: str,
        log: DynoLog,
        driver: Driver,
        timing: Timing,
        crashes: int = 0,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.id = id
        self.kind = kind
        self.app_id = app_id
        self.name = name
        self.type = type
        self.command = command
        self.release_version = release_version
        self.size = size
        self.log = log
        self.driver = driver
        self.timing = timing
        self.crashes = crashes
        self.clock = clock
        self.on_change = on_change
        self.state = "starting"  # starting | up | stopping | exited | crashed
        self.started_at = clock()
        self.up_at: float | None = None
        self.port: int | None = None
        self.pid: int | None = None
        self.exit_status: int | None = None
        self.retry_at: float | None = None
        self.stop_reason: str | None = None
        self.process: Process | None = None
        self.uid: int | None = None  # the app's own uid (from its release)
        self.checks: tuple[Healthcheck, ...] = ()  # web: app.json's startup checks
        self.memory: int | None = None  # bytes, last sampled
        self._r14_at = float("-inf")
        self._r15 = False
        self._stop = asyncio.Event()
        self._sigterm = asyncio.Event()  # set: stopping may send SIGTERM
        self._unrouting: asyncio.TimerHandle | None = None
        self._done = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(
        self,
        home: Path,
        env: dict[str, str],
        io: IO,
        *,
        web: bool = False,
        stdin: bool = False,
        merge_stderr: bool = False,
        tty: Size | None = None,
    ) -> int | None:
        """Run until the main process exits; its exit status, None if it never started."""
        try:
            if self.stopping:
                return None
            spec = LaunchSpec(
                self.app_id,
                self.name,
                self.size,
                dyno_argv(self.command),
                env,
                home,
                stdin=stdin,
                merge_stderr=merge_stderr,
                tty=tty,
                uid=self.uid,
            )
            self.log.platform(f"Starting process with command `{self.command}`")
            try:
                process = await self.driver.spawn(spec)
            except (OSError, ValueError) as exc:
                self.log.platform(f"Error R99 (Platform error) -> Failed to start process: {exc}")
                return None
            self.process, self.pid = process, process.pid
            self.on_change()
            if not web:
                self._mark_up()  # other process types are up once they run, as on Heroku
            status = await self._supervise(process, io, web)
            self.exit_status = status
            return status
        finally:
            self._done.set()

    async def _supervise(self, process: Process, io: IO, web: bool) -> int:
        try:
            async with asyncio.TaskGroup() as tg:
                output = tg.create_task(io(process))
                watcher = tg.create_task(self._watch_up(process, web))
                stopper = tg.create_task(self._stopper(process))
                memory = tg.create_task(self._watch_memory(process))
                returncode = await process.wait()
                memory.cancel()
                self._check_memory(process)  # the kernel's OOM kill may be why it ended
                status = exit_status(returncode)
                self.log.platform(f"Process exited with status {status}")
                watcher.cancel()
                if self.stopping:
                    self._sigterm.set()  # gone: nothing to route to any more
                    await stopper  # waits for the rest of the dyno, within the grace period
                else:
                    stopper.cancel()
                    # The dyno ends with its main process; whatever it left behind goes too.
                    self.driver.signal(process, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.timing.drain):
                        await asyncio.shield(output)
                output.cancel()
        except BaseException:
            # Cancelled (the agent is going down hard) or a bug: never leave the dyno behind.
            if self.driver.running(process):
                self.driver.signal(process, signal.SIGKILL)
            self.driver.finished(process)
            raise
        finally:
            close_output(process)  # a process that left the dyno may still hold the pipes
        await asyncio.to_thread(self.driver.finished, process)
        return status

    async def _watch_memory(self, process: Process) -> None:
        if self.driver.memory(process) is None:
            return  # this driver cannot measure a dyno: nothing to watch
        while True:
            await asyncio.sleep(self.timing.memory_poll)
            if self._check_memory(process):
                self.driver.signal(process, signal.SIGKILL)
                return

    def _check_memory(self, process: Process) -> bool:
        """Sample the dyno's memory: R14 above its size's quota (at most every
        `timing.r14_every` seconds), R15 once the kernel killed a process at the hard limit
        (twice the quota) or the dyno reached it; True if it must be killed (R15)."""
        sample = self.driver.memory(process)
        if sample is None or self._r15:
            return False
        used, oom_kills = sample
        self.memory = used
        quota = self.driver.limits(self.size).memory
        vastly = oom_kills > 0 or used >= 2 * quota
        now = self.clock()
        if not vastly and (used <= quota or now - self._r14_at < self.timing.r14_every):
            return False
        self.log.platform(f"Process running mem={used >> 20}MB({100 * used / quota:.1f}%)")
        if vastly:
            self._r15 = True
            self.log.platform("Error R15 (Memory quota vastly exceeded)")
            self.log.platform("Stopping process with SIGKILL")
            return True
        self._r14_at = now
        self.log.platform("Error R14 (Memory quota exceeded)")
        return False

    async def _watch_up(self, process: Process, web: bool) -> None:
        """A web dyno is up once $PORT accepts connections and every startup check passed;
        all of it within the boot timeout (R10)."""
        if not web or self.port is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timing.boot_timeout
        while not await accepts(self.port):
            if loop.time() >= deadline:
                self._boot_failed(process, "Web process failed to bind to $PORT")
                return
            await asyncio.sleep(self.timing.poll)
        for check in self.checks:
            if not await self._passes(process, check, deadline):
                return
        self._mark_up()

    async def _passes(self, process: Process, check: Healthcheck, deadline: float) -> bool:
        """Probe `check` until it passes (True) or fails its boot (False, the dyno killed)."""
        assert self.port is not None
        loop = asyncio.get_running_loop()
        await asyncio.sleep(min(check.initial_delay, max(0.0, deadline - loop.time())))
        for attempt in range(1, check.attempts + 1):
            left = deadline - loop.time()
            if left <= 0:
                break
            problem = await probe(self.port, check, min(check.timeout, left))
            if not problem:
                self.log.platform(f'Startup check "{check.label}" passed')
                return True
            self.log.platform(
                f'Startup check "{check.label}" failed (attempt {attempt} of {check.attempts}): '
                f"{problem}"
            )
            if attempt == check.attempts:
                self._boot_failed(
                    process, f'Web process failed its startup check "{check.label}"', late=False
                )
                return False
            await asyncio.sleep(min(check.wait, max(0.0, deadline - loop.time())))
        self._boot_failed(process, f'Web process did not pass its startup check "{check.label}"')
        return False

    def _boot_failed(self, process: Process, what: str, *, late: bool = True) -> None:
        within = f" within {self.timing.boot_timeout:g} seconds of launch" if late else ""
        self.log.platform(f"Error R10 (Boot timeout) -> {what}{within}")
        self.log.platform("Stopping process with SIGKILL")
        self.driver.signal(process, signal.SIGKILL)

    def _mark_up(self) -> None:
        if not self.stopping and self.state == "starting":
            self.state, self.up_at = "up", self.clock()
            self.log.platform("State changed from starting to up")
            self.on_change()

    async def stop_due(self) -> None:
        """Until a stop is asked for and the router no longer sends the dyno requests."""
        await self._stop.wait()
        await self._sigterm.wait()

    async def _stopper(self, process: Process) -> None:
        await self.stop_due()
        if process.returncode is not None and not self.driver.running(process):
            return  # it ended on its own meanwhile
        self.log.platform("Stopping all processes with SIGTERM")
        self.driver.signal(process, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timing.stop_grace
        while process.returncode is None or self.driver.running(process):
            if loop.time() >= deadline:
                self.log.platform(
                    "Error R12 (Exit timeout) -> At least one process failed to exit within "
                    f"{self.timing.stop_grace:g} seconds of SIGTERM"
                )
                self.log.platform("Stopping remaining processes with SIGKILL")
                self.driver.signal(process, signal.SIGKILL)
                return
            await asyncio.sleep(self.timing.poll)

    def request_stop(self, reason: str, *, routed: bool = False) -> None:
        """Stop the dyno: SIGTERM now, or, for a dyno the router may still send requests to,
        once `unrouted()` says the router has been told (asked again unrouted: now)."""
        if not routed:
            self._sigterm.set()
        if not self.stopping:
            self.stop_reason = reason
            self._stop.set()

    def unrouted(self) -> None:
        """The store no longer lists this stopping dyno: SIGTERM once the router has had
        `timing.unroute` seconds to reload."""
        if self.routed_stop:
            loop = asyncio.get_running_loop()
            self._unrouting = loop.call_later(self.timing.unroute, self._sigterm.set)

    @property
    def routed_stop(self) -> bool:
        """Stopping, but the router has not been told yet (SIGTERM waits for `unrouted`)."""
        return self.stopping and not self._sigterm.is_set() and self._unrouting is None

    async def stop(self, reason: str) -> None:
        """Stop the dyno and wait until it is gone (at most the grace period, then SIGKILL)."""
        self.request_stop(reason)
        await self._done.wait()

    async def wait_done(self) -> None:
        await self._done.wait()

    def close(self) -> None:
        """Nothing of this dyno runs any more (also when it never started)."""
        if self._unrouting is not None:
            self._unrouting.cancel()
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()
