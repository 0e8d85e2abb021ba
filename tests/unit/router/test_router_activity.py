"""The router's record of each app's last request: batched writes, and at once (with a wake-up)
for an app whose dynos sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from kapal.router.activity import Activity


class Sink:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[dict[str, float], bool]] = []
        self.fail = fail
        self.called = asyncio.Event()

    def __call__(self, last_requests: Mapping[str, float], wake: bool) -> None:
        self.calls.append((dict(last_requests), wake))
        self.called.set()
        if self.fail:
            self.fail -= 1
            raise OSError("store unavailable")


def test_requests_are_written_in_batches_with_the_latest_time_per_app() -> None:
    async def scenario() -> None:
        sink = Sink()
        activity = Activity(sink, every=3600)
        activity.touch("a", 1.0)
        activity.touch("a", 2.0)
        activity.touch("b", 1.5)
        await activity.flush()
        assert sink.calls == [({"a": 2.0, "b": 1.5}, False)]
        await activity.flush()  # nothing new: nothing written
        assert len(sink.calls) == 1

    asyncio.run(scenario())


def test_a_request_for_a_sleeping_app_is_written_at_once_with_a_wake_up() -> None:
    async def scenario() -> None:
        sink = Sink()
        activity = Activity(sink, every=3600)
        task = asyncio.create_task(activity.run())
        try:
            await asyncio.sleep(0)
            activity.touch("b", 0.5)
            activity.wake("a", 1.0)
            activity.wake("a", 1.1)  # the same wake-up: not asked twice
            async with asyncio.timeout(10):
                await sink.called.wait()
            assert sink.calls[0] == ({"a": 1.1, "b": 0.5}, True)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())


def test_what_could_not_be_written_is_kept_for_the_next_time() -> None:
    async def scenario() -> None:
        sink = Sink(fail=1)
        activity = Activity(sink, every=3600)
        activity.touch("a", 1.0)
        await activity.flush()
        activity.touch("b", 2.0)
        await activity.flush()
        assert sink.calls[-1] == ({"a": 1.0, "b": 2.0}, False)

    asyncio.run(scenario())


def test_without_a_sink_requests_are_only_kept() -> None:
    async def scenario() -> None:
        activity = Activity()
        activity.touch("a", 1.0)
        await activity.flush(wake=True)
        assert activity.pending == {}

    asyncio.run(scenario())
