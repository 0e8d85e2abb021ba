"""Eco apps at the router: a request for a sleeping app is held (every one of them) while the
agent is woken, then proxied; H20 if no dyno comes up in time; H82 when the quota is used up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import pytest
from tests.integration.router.router_harness import (
    Client,
    ListSink,
    app,
    dyno,
    fields,
)

from kapal.router import Router, RouterConfig, RouteTable
from kapal.router.activity import Activity

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})


class Recorded:
    """The router's ActivitySink: what it was asked to store, and the wake-ups."""

    def __init__(self) -> None:
        self.batches: list[tuple[dict[str, float], bool]] = []

    def __call__(self, last_requests: Mapping[str, float], wake: bool) -> None:
        self.batches.append((dict(last_requests), wake))


@contextlib.asynccontextmanager
async def eco_router(
    table: RouteTable, **config: object
) -> AsyncIterator[tuple[Router, ListSink, Recorded]]:
    sink, recorded = ListSink(), Recorded()
    activity = Activity(recorded, every=3600)
    router = Router(
        RouterConfig(port=0, **config),  # type: ignore[arg-type]
        lambda: table,
        sink,
        activity=activity,
    )
    await router.start()
    task = asyncio.create_task(activity.run())
    try:
        yield router, sink, recorded
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await router.close(grace=1.0)


async def until(check: object, what: str) -> None:
    async with asyncio.timeout(10):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_requests_for_a_sleeping_app_wake_it_and_are_all_answered() -> None:
    async with dyno() as web, eco_router(RouteTable.of(app(idle=1))) as (router, sink, rec):
        clients = [await Client.open(router.port) for _ in range(5)]
        answers = [asyncio.create_task(c.request(path="/echo")) for c in clients]
        await until(lambda: len(router.parked) == 5, "five requests held")
        await until(lambda: rec.batches, "the wake-up")
        assert rec.batches[0][1] is True and list(rec.batches[0][0]) == ["app-1"]
        assert sum(wake for _, wake in rec.batches) == 1  # one wake-up for them all
        router.install(RouteTable.of(app(idle=1, starting=1)))  # being woken: still held
        await asyncio.sleep(0.05)
        assert len(router.parked) == 5
        router.install(RouteTable.of(app(up=(web.up(),))))
        responses = await asyncio.gather(*answers)
        for client in clients:
            await client.close()
    assert [r.status for r in responses] == [200] * 5
    assert len(web.requests) == 5
    assert all(fields(m)["status"] == "200" for m in sink.messages)


async def test_a_sleeping_app_that_does_not_wake_in_time_is_h20() -> None:
    async with eco_router(RouteTable.of(app(idle=1)), boot_timeout=0.2) as (router, sink, _):
        client = await Client.open(router.port)
        response = await client.request()
        await client.close()
    assert response.status == 503
    assert fields(sink.messages[0])["code"] == "H20"


async def test_an_eco_app_whose_quota_is_used_up_is_h82() -> None:
    table = RouteTable.of(app(idle=1, eco_exhausted=True))
    async with eco_router(table) as (router, sink, recorded):
        client = await Client.open(router.port)
        response = await client.request()
        await client.close()
    assert response.status == 503
    assert b"Application Error" in response.body or b"Application error" in response.body
    logged = fields(sink.messages[0])
    assert (logged["at"], logged["code"], logged["desc"]) == (
        "info",
        "H82",
        "Eco dyno quota exhausted",
    )
    assert not any(wake for _, wake in recorded.batches)  # nothing to wake
