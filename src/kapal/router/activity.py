"""When each app last had a request: kept in memory per request, written to the store in
batches (eco web dynos sleep after a while without one), and at once, with a wake-up for the
agent, when a request arrives for an app whose dynos sleep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Protocol

logger = logging.getLogger(__name__)

FLUSH_EVERY = 5.0  # seconds between batches
REWAKE_AFTER = 1.0  # seconds before another request for a sleeping app writes again


class ActivitySink(Protocol):
    """Stores the apps' last request times (unix seconds); with `wake`, then wakes the agent.
    Blocking: called in a worker thread."""

    def __call__(self, last_requests: Mapping[str, float], wake: bool) -> None: ...


class Activity:
    """The router's record of requests per app; without a sink it only keeps them."""

    __slots__ = ("_urgent", "_waking", "every", "pending", "sink")

    def __init__(self, sink: ActivitySink | None = None, every: float = FLUSH_EVERY) -> None:
        self.sink = sink
        self.every = every
        self.pending: dict[str, float] = {}  # app id -> last request, not yet stored
        self._waking: dict[str, float] = {}  # app id -> when its wake-up was asked (monotonic)
        self._urgent: asyncio.Event | None = None

    def touch(self, app_id: str, at: float) -> None:
        """A request for the app arrived at `at` (unix seconds)."""
        self.pending[app_id] = at

    def wake(self, app_id: str, at: float) -> None:
        """A request arrived for an app whose dynos sleep: store it now and wake the agent."""
        self.pending[app_id] = at
        now = time.monotonic()
        if now - self._waking.get(app_id, float("-inf")) < REWAKE_AFTER:
            return
        self._waking[app_id] = now
        if self._urgent is not None:
            self._urgent.set()

    async def run(self) -> None:
        """Write batches every `every` seconds, and at once when a sleeping app is asked for,
        until cancelled."""
        self._urgent = urgent = asyncio.Event()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.every):
                        await urgent.wait()
                wake = urgent.is_set()
                urgent.clear()
                await self.flush(wake)
        finally:
            self._urgent = None

    async def flush(self, wake: bool = False) -> None:
        """Store what is pending (in a worker thread); on failure keep it for the next time."""
        batch, self.pending = self.pending, {}
        if self.sink is None or not (batch or wake):
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.sink, batch, wake)
        except Exception:
            logger.exception("could not store the apps' last requests; trying again")
            for app_id, at in batch.items():
                self.pending[app_id] = max(at, self.pending.get(app_id, at))
            if wake:
                self._waking.clear()
