"""The reconcile loop's own duties, over an in-memory store and no dynos."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from kapal.domain.logline import LogLine
from kapal.runtime.driver import PlainDriver
from kapal.runtime.gateway import Gateway
from kapal.runtime.reconcile import ReconcileLoop
from kapal.runtime.slugs import SlugCache
from kapal.runtime.state import Desired, DesiredApp, DynoRow, OneOffSpec
from kapal.runtime.supervisor import Supervisor

DEADLINE = 10.0  # only ever reached when the loop is stuck


class MemoryStore:
    """A StateStore with nothing to run; it counts what the loop asks of it."""

    def __init__(self) -> None:
        self.reads = 0
        self.expiries = 0
        self.one_offs: tuple[OneOffSpec, ...] = ()

    def read(self) -> Desired:
        self.reads += 1
        return Desired({"app1": DesiredApp("app1", None)}, (), self.one_offs)

    def write_dynos(self, rows: Sequence[DynoRow]) -> None:
        pass

    def leftover_dynos(self, now: float) -> list[DynoRow]:
        return []

    def finish_release(self, app_id: str, version: int, succeeded: bool, output: str) -> None:
        pass

    def claim_attach(self, attach_hash: str) -> OneOffSpec | None:
        return None

    def one_off_started(self, app_id: str, name: str, pid: int | None) -> None:
        pass

    def one_off_finished(self, app_id: str, name: str) -> None:
        pass

    def expire_unattached(self, created_before: float) -> list[tuple[str, str]]:
        self.expiries += 1
        return []


class Lines:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def append(self, line: LogLine) -> None:
        self.lines.append(line)


class StuckPrune(SlugCache):
    """Removing unused unpacked releases takes as long as the test wants."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp / "slugs", tmp / "dynos")
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def prune(self, in_use: Collection[tuple[str, int]]) -> None:
        self.entered.set()
        await self.release.wait()


def reconcile_loop(tmp: Path, store: MemoryStore, slugs: SlugCache) -> ReconcileLoop:
    gateway = Gateway(store)
    supervisor = Supervisor(driver=PlainDriver(), slugs=slugs, log=Lines(), gateway=gateway)
    return ReconcileLoop(gateway, supervisor, Lines(), interval=3600.0)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {what} within {DEADLINE:g} s")
        await asyncio.sleep(0.01)


def test_passes_go_on_while_unused_releases_are_removed(tmp_path: Path) -> None:
    """Deleting an unpacked release (thousands of files) must not hold up the next pass: a
    dyno that came up meanwhile would reach the router only after it."""
    store = MemoryStore()
    slugs = StuckPrune(tmp_path)
    loop = reconcile_loop(tmp_path, store, slugs)

    async def scenario() -> int:
        task = asyncio.create_task(loop.run())
        try:
            await until(lambda: loop.passes >= 1, "first pass")
            await until(slugs.entered.is_set, "removal of unused releases")
            before = loop.passes
            loop.kick()  # a dyno changed state
            await until(lambda: loop.passes > before, "pass while the removal runs")
            return loop.passes - before
        finally:
            slugs.release.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            loop.gateway.close()

    assert asyncio.run(scenario()) >= 1


def test_attach_one_offs_are_only_expired_when_some_wait(tmp_path: Path) -> None:
    store = MemoryStore()
    loop = reconcile_loop(tmp_path, store, SlugCache(tmp_path / "slugs", tmp_path / "dynos"))

    async def scenario() -> None:
        try:
            await loop.pass_once()
            assert store.expiries == 0  # no write transaction for nothing, every second
            store.one_offs = (OneOffSpec("app1", "run.1", "bash", None, attach=True),)
            await loop.pass_once()
            assert store.expiries == 1
        finally:
            loop.gateway.close()

    asyncio.run(scenario())
