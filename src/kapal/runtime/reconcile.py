"""The reconcile loop: each pass re-reads the full desired state, plans, acts, and writes the
dynos it observes back to the store. Wake-ups (store hints, dyno state changes) only make
the next pass come sooner; without them a pass runs every `interval` seconds.

Unpacked releases no dyno uses any more are deleted beside the passes, never in one: removing
thousands of files can take seconds, and a pass must not wait for that (a dyno just up would
reach the router that much later)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from kapal.domain.logline import LogLine
from kapal.runtime.backend import DynoBackend
from kapal.runtime.gateway import Gateway
from kapal.runtime.leftovers import is_leftover
from kapal.runtime.state import LogSink

logger = logging.getLogger(__name__)

ATTACH_TTL = 60.0  # an attach=True one-off nobody attached to within this is removed


class Waker(Protocol):
    async def wait(self, timeout: float) -> bool:
        """True when a hint arrived within `timeout` seconds."""
        ...


class ReconcileLoop:
    def __init__(
        self,
        gateway: Gateway,
        backend: DynoBackend,
        log: LogSink,
        *,
        wake: Waker | None = None,
        interval: float = 1.0,
        attach_ttl: float = ATTACH_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self.store = gateway.store
        self.backend = backend
        self.log = log
        self.wake = wake
        self.interval = interval
        self.attach_ttl = attach_ttl
        self.clock = clock
        self.passes = 0
        self._kick = asyncio.Event()
        self._unused = asyncio.Event()  # set after a pass: unpacked releases may be unused
        self._closing = False
        # A dyno coming up or crashing is worth a pass now: the router waits for the row.
        backend.on_change = self.kick

    def kick(self) -> None:
        self._kick.set()

    async def run(self) -> None:
        """Adopt what an earlier agent left, then reconcile until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.backend.run(), name="dynos")
            tasks.create_task(self._prune_forever(), name="unpacked releases")
            if self.wake is not None:
                tasks.create_task(self._forward_wakes(), name="wake-ups")
            await self.adopt()
            while not self._closing:
                try:
                    await self.pass_once()
                except Exception:
                    logger.exception("reconcile pass failed; retrying")
                await self._sleep()
            await asyncio.Event().wait()  # shutdown() is stopping the dynos; wait to be cancelled

    async def adopt(self) -> None:
        """Take over from an earlier agent run (it crashed or was killed). Its formation dynos
        serve on until new ones replace them (kapal.runtime.leftovers); its release phases and
        one-offs, whose outcome nobody can learn any more, are killed at once."""
        rows = await self.gateway.call(self.store.leftover_dynos, self.clock())
        running = [r for r in rows if r.pid is not None and is_leftover(r.pid, r.started_at)]
        for row in running:
            await self.backend.adopt(row)
        for row in rows:
            if row.state == "idle":  # an eco dyno asleep: it sleeps on
                await self.backend.adopt(row)
        if running:
            logger.info("took over %d dynos of an earlier agent run", len(running))

    async def pass_once(self) -> None:
        desired = await self.gateway.call(self.store.read)
        if self._closing:
            return
        now = self.clock()
        self.backend.converge(desired, now)
        # The dynos first: a changed row is what the router waits for; and web dynos the
        # router no longer sees may stop.
        await self.gateway.call(self.store.write_dynos, self.backend.rows())
        self.backend.unrouted()
        if any(o.attach and o.state == "starting" for o in desired.one_offs):
            expired = await self.gateway.call(self.store.expire_unattached, now - self.attach_ttl)
            for app_id, name in expired:
                message = "Error R13 (Attach error) -> Failed to attach to process"
                self.log.append(LogLine(app_id, "kapal", name, message, now))
        self._unused.set()
        self.passes += 1

    async def shutdown(self) -> None:
        """Stop every dyno (in parallel), with rows showing them gone first."""
        self._closing = True
        stopping = self.backend.begin_shutdown()
        with contextlib.suppress(Exception):
            await self.gateway.call(self.store.write_dynos, self.backend.rows())
        await asyncio.gather(*(dyno.wait_done() for dyno in stopping))
        with contextlib.suppress(Exception):
            await self.gateway.call(self.store.write_dynos, self.backend.rows())

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.interval):
                await self._kick.wait()
        self._kick.clear()

    async def _prune_forever(self) -> None:
        while True:
            await self._unused.wait()
            self._unused.clear()
            if self._closing:
                continue  # what runs until the agent stops is needed when it starts again
            try:
                await self.backend.housekeep()
            except Exception:
                logger.exception("removing unused unpacked releases failed; retrying")
                await asyncio.sleep(self.interval)

    async def _forward_wakes(self) -> None:
        assert self.wake is not None
        while True:
            if await self.wake.wait(3600):
                self.kick()
