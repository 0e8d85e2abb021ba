"""Store calls off the event loop: one worker thread, so they run in the order issued
(a snapshot of dyno rows written later never lands before one written earlier)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from kapal.runtime.state import StateStore

P = ParamSpec("P")
T = TypeVar("T")


class Gateway:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="kapal-store")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
