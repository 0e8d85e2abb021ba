"""A small build queue: owned tasks, a few at a time, cancelled when the process stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 1


class BuildQueue:
    """Runs submitted jobs in its TaskGroup; a failing job is logged and never stops others."""

    def __init__(self, group: asyncio.TaskGroup, concurrency: int) -> None:
        self._group = group
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        task = self._group.create_task(self._run(name, job), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def running(self) -> int:
        """Jobs submitted and not finished: running or waiting for a slot."""
        return len(self._tasks)

    def must_wait_for(self) -> int:
        """How many jobs a job submitted now would wait for before it starts."""
        return max(0, len(self._tasks) - self._concurrency + 1)

    async def _run(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        async with self._slots:
            try:
                await job()
            except Exception:
                log.exception("%s failed", name)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()


@asynccontextmanager
async def build_queue(concurrency: int = DEFAULT_CONCURRENCY) -> AsyncIterator[BuildQueue]:
    """A queue for the life of the block; jobs still running at its end are cancelled."""
    async with asyncio.TaskGroup() as group:
        queue = BuildQueue(group, concurrency)
        try:
            yield queue
        finally:
            queue.cancel_all()
