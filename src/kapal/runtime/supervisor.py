"""The dynos this agent runs: carries out plan() actions and says what it observes.

Every dyno runs in a task of the supervisor's TaskGroup; a failure in one is logged and
never reaches the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from kapal.domain.eco import ECO
from kapal.runtime.backoff import Backoff
from kapal.runtime.driver import Driver
from kapal.runtime.dyno import IO, Dyno, Timing
from kapal.runtime.eco import EcoMeter
from kapal.runtime.gateway import Gateway
from kapal.runtime.leftovers import kill_leftover, watch_leftover
from kapal.runtime.lifecycles import Lifecycles, Limits
from kapal.runtime.lifetimes import Lifetimes
from kapal.runtime.output import DynoLog
from kapal.runtime.plan import IDLE, NOT_FORMATION_TYPES, Action, Observed, Start, Stop, plan
from kapal.runtime.slugs import SlugCache
from kapal.runtime.state import Desired, DynoRow, LogSink, MemoryReading, OneOffSpec

logger = logging.getLogger(__name__)

_ROW_PREFERENCE = {"up": 0, "starting": 1, "crashed": 2, IDLE: 3}
# States a dyno is kept in after its process is gone (an idle one never had a process: it
# stands for an eco dyno asleep).
_RECORDS = ("crashed", "exited", IDLE)
# Stops of a web dyno while its app is still routed (or, asleep, held by the router).
_UNROUTE = ("replaced", "cycled", "scaled", "idled", "exhausted")
_SLEEP = ("idled", "exhausted")


class Supervisor:
    def __init__(
        self,
        *,
        driver: Driver,
        slugs: SlugCache,
        log: LogSink,
        gateway: Gateway,
        timing: Timing | None = None,
        backoff: Backoff | None = None,
        limits: Limits | None = None,
        lifetimes: Lifetimes | None = None,
        chance: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] = lambda: None,
        eco_sleep_after: float | None = None,
    ) -> None:
        self.driver = driver
        self.sink = log
        self.timing = timing or Timing()
        self.lifetimes = lifetimes or Lifetimes()
        self.chance = chance  # picks each dyno's share of the daily cycle's jitter
        self.clock = clock
        self.lifecycles = Lifecycles(
            slugs=slugs,
            gateway=gateway,
            backoff=backoff or Backoff(),
            limits=limits or Limits(),
            ports_in_use=lambda: {d.port for d in self.dynos.values() if d.port is not None},
            clock=clock,
        )
        self.on_change = on_change
        self.eco_sleep_after = eco_sleep_after  # None: eco dynos never sleep
        self.eco = EcoMeter()  # eco dynos' running time, for the account's eco dyno hours
        self.dynos: dict[int, Dyno] = {}
        self.expires: dict[int, float] = {}  # dyno id -> when it is cycled or ended
        self.closing = False
        self._next_id = 0
        self._tasks: asyncio.TaskGroup | None = None

    async def run(self) -> None:
        """Own the dynos' tasks until cancelled (call shutdown() first to stop them)."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await asyncio.Event().wait()
            finally:
                self._tasks = None

    # What the planner sees and what the store shows.

    def observed(self) -> list[Observed]:
        return [
            Observed(
                d.id,
                d.app_id,
                d.kind,
                d.name,
                d.type,
                d.release_version,
                d.size,
                "stopping" if d.stopping and d.state != "exited" else d.state,
                d.started_at,
                d.crashes,
                d.retry_at,
                expires_at=self.expires.get(d.id),
            )
            for d in self.dynos.values()
        ]

    def rows(self) -> list[DynoRow]:
        """One row per formation dyno name (the one serving, during a replacement) and one
        per running release phase."""
        best: dict[tuple[str, str], Dyno] = {}
        for d in self.dynos.values():
            if d.kind == "run" or d.stopping or d.state not in _ROW_PREFERENCE:
                continue
            key = (d.app_id, d.name)
            other = best.get(key)
            if other is None or _rank(d) < _rank(other):
                best[key] = d
        return [
            DynoRow(
                d.app_id,
                d.name,
                d.type,
                d.command,
                d.size,
                d.release_version,
                d.state,
                d.port if d.state != "crashed" else None,
                d.pid if d.state != "crashed" else None,
                d.started_at,
                d.retry_at if d.state == "crashed" else None,
            )
            for d in best.values()
        ]

    def memory(self) -> list[MemoryReading]:
        """The last memory sample of every running dyno that has one."""
        return [
            MemoryReading(d.app_id, d.name, d.memory, self.driver.limits(d.size).memory)
            for d in self.dynos.values()
            if d.memory is not None and not d.done
        ]

    def in_use(self) -> set[tuple[str, int]]:
        return {(d.app_id, d.release_version) for d in self.dynos.values()}

    # Carrying out the plan.

    def converge(self, desired: Desired, now: float) -> None:
        """DynoBackend: carry out the planner's actions for `desired` and what runs now."""
        self.apply(plan(desired, self.observed(), now, sleep_after=self.eco_sleep_after))

    async def housekeep(self) -> None:
        """DynoBackend: remove unpacked releases no dyno uses any more. What is in use is
        read now, on the loop, as the unused are renamed aside."""
        await self.lifecycles.slugs.prune(self.in_use())

    def apply(self, actions: Iterable[Action]) -> None:
        for action in actions:
            try:
                if isinstance(action, Stop):
                    self._stop(action)
                elif not self.closing:
                    self._start(action)
            except Exception:
                logger.exception("could not carry out %s", action)

    def _stop(self, action: Stop) -> None:
        dyno = self.dynos.get(action.id)
        if dyno is None:
            return
        if dyno.stopping:
            if action.reason == "shutdown":
                dyno.request_stop(action.reason)  # no more waiting for the router
            return
        if action.reason in _SLEEP:
            self._fall_asleep(dyno, action.reason)
            if dyno.state in _RECORDS or dyno.done:
                self._forget(dyno)
                return
        elif action.reason == "woken":
            dyno.log.platform("Unidling")
            dyno.log.platform("State changed from idle to starting")
        if dyno.state in _RECORDS or dyno.done:
            self._forget(dyno)
            return
        if action.reason == "replaced":
            dyno.log.platform("Restarting")
        elif action.reason == "cycled":
            dyno.log.platform("Cycling")  # Heroku's daily restart
        elif action.reason == "expired":
            ttl = self.lifetimes.run_ttl
            dyno.log.platform(f"Stopping: the time to live of {ttl:g} seconds is over")
        elif action.reason in ("scaled", "deleted", "shutdown"):
            dyno.log.platform(f"State changed from {dyno.state} to down")
        elif action.reason in _SLEEP:
            dyno.log.platform(f"State changed from {dyno.state} to idle")
        # The router keeps sending requests to an up web dyno until it reloads its table:
        # SIGTERM waits until the store has shown the dyno gone (`unrouted`).
        routed = dyno.type == "web" and dyno.state == "up" and action.reason in _UNROUTE
        dyno.request_stop(action.reason, routed=routed)
        self.on_change()

    def _fall_asleep(self, dyno: Dyno, reason: str) -> None:
        """Leave an idle record in the slot of an eco dyno that goes to sleep."""
        if reason == "exhausted":
            dyno.log.platform("Idling: the eco dyno hours quota of this month is used up")
        else:
            dyno.log.platform("Idling")
        self._idle_record(
            dyno.app_id, dyno.name, dyno.type, dyno.command, dyno.release_version, dyno.size
        )

    def _idle_record(
        self, app_id: str, name: str, type_: str, command: str, version: int, size: str
    ) -> Dyno:
        record = self._new_dyno("formation", app_id, name, type_, command, version, size)
        record.state = IDLE
        self.expires.pop(record.id, None)
        return record

    def unrouted(self) -> None:
        """The rows (`rows()`) were written: dynos stopping without them may get SIGTERM."""
        for dyno in self.dynos.values():
            if dyno.routed_stop:
                dyno.unrouted()

    def _start(self, start: Start) -> None:
        dyno = self._new_dyno(
            start.kind,
            start.app_id,
            start.name,
            start.type,
            start.command,
            start.release.version,
            start.size,
            start.crashes,
        )
        if start.kind == "formation":
            self._spawn(dyno, self.lifecycles.formation(dyno, start.release))
        elif start.kind == "release":
            self._spawn(dyno, self.lifecycles.release_phase(dyno, start.release))
        else:
            self._spawn(dyno, self.lifecycles.one_off(dyno, start.release))

    def _new_dyno(
        self,
        kind: str,
        app_id: str,
        name: str,
        type_: str,
        command: str,
        version: int,
        size: str,
        crashes: int = 0,
    ) -> Dyno:
        self._next_id += 1
        dyno = Dyno(
            id=self._next_id,
            kind=kind,
            app_id=app_id,
            name=name,
            type=type_,
            command=command,
            release_version=version,
            size=size,
            crashes=crashes,
            log=DynoLog(self.sink, app_id, name, self.clock),
            driver=self.driver,
            timing=self.timing,
            clock=self.clock,
            on_change=self.on_change,
        )
        self.dynos[dyno.id] = dyno
        expires = self.lifetimes.expires_at(kind, dyno.started_at, self.chance())
        if expires is not None:
            self.expires[dyno.id] = expires
        return dyno

    def _spawn(self, dyno: Dyno, lifecycle: Coroutine[Any, Any, None]) -> None:
        if self._tasks is None:
            lifecycle.close()
            self._forget(dyno)
            raise RuntimeError("the supervisor is not running")
        self._tasks.create_task(self._guard(dyno, lifecycle), name=f"dyno {dyno.name}")

    async def _guard(self, dyno: Dyno, lifecycle: Coroutine[Any, Any, None]) -> None:
        if dyno.size == ECO:
            self.eco.started(dyno.id, dyno.app_id, self.clock())
        try:
            await lifecycle
        except Exception:
            logger.exception("dyno %s of %s failed", dyno.name, dyno.app_id)
            if dyno.kind == "formation" and not dyno.stopping and dyno.state != "crashed":
                self.lifecycles.crashed(dyno)  # back off rather than fail again at once
        finally:
            self.eco.stopped(dyno.id, self.clock())
            if dyno.state not in _RECORDS:
                self._forget(dyno)
            dyno.close()
            self.on_change()

    def _forget(self, dyno: Dyno) -> None:
        self.dynos.pop(dyno.id, None)
        self.expires.pop(dyno.id, None)

    async def adopt(self, row: DynoRow) -> None:
        """A dyno an earlier agent run left running, as its row recorded it (see
        kapal.runtime.leftovers): a formation dyno is watched until it is replaced; a release
        phase or one-off, whose outcome nobody can learn any more, is killed. An idle row is
        an eco dyno asleep: it stays asleep."""
        if row.state == IDLE:
            record = self._idle_record(
                row.app_id, row.name, row.type, row.command, row.release_version, row.size
            )
            record.started_at = row.started_at
            return
        if row.type in NOT_FORMATION_TYPES:
            if row.pid is not None:
                killed = await asyncio.to_thread(kill_leftover, row.pid)
                logger.info("killed %d processes of %s of %s", killed, row.name, row.app_id)
            return
        dyno = self._new_dyno(
            "formation", row.app_id, row.name, row.type, row.command, row.release_version, row.size
        )
        dyno.state, dyno.port, dyno.pid = row.state, row.port, row.pid
        dyno.started_at = row.started_at
        if row.state == "up":
            dyno.up_at = row.started_at
        self._spawn(dyno, watch_leftover(dyno))

    async def attach(self, spec: OneOffSpec, make_io: Callable[[Dyno], IO]) -> None:
        """Run an attached one-off in the calling task (the rendezvous connection)."""
        version = spec.release.version if spec.release is not None else 0
        dyno = self._new_dyno(
            "run", spec.app_id, spec.name, "run", spec.command, version, spec.size
        )
        await self._guard(dyno, self.lifecycles.one_off(dyno, spec.release, make_io(dyno)))

    def begin_shutdown(self) -> list[Dyno]:
        """Start no more dynos and ask every running one to stop; returns those stopping."""
        self.closing = True
        for dyno in [d for d in self.dynos.values() if d.state == "crashed"]:
            self._forget(dyno)
        live = [d for d in self.dynos.values() if d.state not in _RECORDS]
        for dyno in live:
            self._stop(Stop(dyno.id, "shutdown"))
        return live

    async def shutdown(self) -> None:
        """Stop every dyno, in parallel, and start no more."""
        await asyncio.gather(*(d.wait_done() for d in self.begin_shutdown()))


def _rank(dyno: Dyno) -> tuple[int, float]:
    return (_ROW_PREFERENCE[dyno.state], -dyno.started_at)
