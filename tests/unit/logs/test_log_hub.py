import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.logline import SOURCES, LogLine
from kapal.logs.filters import ANY, LogFilter
from kapal.logs.hub import HISTORY_LINES, LogHub
from kapal.logs.subscription import Entry


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def line(message: str, dyno: str = "web.1", app_id: str = "app-1", source: str = "app") -> LogLine:
    return LogLine(app_id, source, dyno, message, 1_700_000_000.0)


def messages(entries: list[Entry]) -> list[str]:
    return [entry.line.message for entry in entries]


def fixed_clock() -> float:
    return 1_700_000_000.5


def test_history_keeps_the_last_1500_lines_by_default() -> None:
    hub = LogHub()
    for i in range(HISTORY_LINES + 10):
        hub.append(line(str(i)))
    kept = hub.history("app-1", ANY, 5000)
    assert len(kept) == 1500
    assert kept[0].line.message == "10"
    assert kept[-1].line.message == str(HISTORY_LINES + 9)


def test_history_returns_the_last_n_matching_oldest_first() -> None:
    hub = LogHub()
    for i, dyno in enumerate(["web.1", "router", "web.2", "worker.1", "web.1", "router"]):
        hub.append(line(f"{i}", dyno))
    assert messages(hub.history("app-1", ANY, 3)) == ["3", "4", "5"]
    assert messages(hub.history("app-1", LogFilter(dyno="web"), 2)) == ["2", "4"]
    assert messages(hub.history("app-1", LogFilter(dyno="router"), 100)) == ["1", "5"]
    assert hub.history("app-1", ANY, 0) == []


def test_apps_have_separate_histories_and_sequences() -> None:
    hub = LogHub(clock=fixed_clock)
    a1 = hub.append(line("a1", app_id="a"))
    b1 = hub.append(line("b1", app_id="b"))
    a2 = hub.append(line("a2", app_id="a"))
    assert messages(hub.history("a")) == ["a1", "a2"]
    assert messages(hub.history("b")) == ["b1"]
    assert hub.history("nobody") == []
    assert a2 == a1 + 1
    # Sequences start from the clock so they keep growing across restarts of the agent.
    assert a1 == b1 == 1_700_000_000_500_000


def test_history_after_a_sequence_number() -> None:
    hub = LogHub()
    seqs = [hub.append(line(str(i))) for i in range(5)]
    assert messages(hub.history("app-1", ANY, 100, after=seqs[2])) == ["3", "4"]
    assert messages(hub.history("app-1", ANY, 1, after=seqs[2])) == ["4"]
    assert hub.history("app-1", ANY, 100, after=seqs[4]) == []


@given(
    appended=st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from(["web.1", "web.2", "worker.1", "router", "api"]),
            st.sampled_from(SOURCES),
        ),
        max_size=80,
    ),
    capacity=st.integers(1, 20),
    n=st.integers(0, 30),
    dyno=st.sampled_from([None, "web", "web.1", "router", "worker"]),
    source=st.sampled_from([None, *SOURCES]),
)
def test_history_stays_ordered_and_bounded(
    appended: list[tuple[str, str, str]],
    capacity: int,
    n: int,
    dyno: str | None,
    source: str | None,
) -> None:
    hub = LogHub(history_lines=capacity)
    model: dict[str, list[LogLine]] = {"a": [], "b": []}
    for i, (app_id, dyno_name, src) in enumerate(appended):
        item = LogLine(app_id, src, dyno_name, str(i), float(i))
        hub.append(item)
        model[app_id] = [*model[app_id], item][-capacity:]
    log_filter = LogFilter(dyno, source)
    for app_id, kept in model.items():
        got = hub.history(app_id, log_filter, n)
        matching = [item for item in kept if log_filter.matches(item)]
        assert [entry.line for entry in got] == (matching[-n:] if n else [])
        seqs = [entry.seq for entry in got if entry.seq is not None]
        assert len(seqs) == len(got)
        assert seqs == sorted(set(seqs))  # strictly increasing: arrival order
        assert len(got) <= min(n, capacity)


@pytest.mark.anyio
async def test_subscribers_get_matching_live_lines() -> None:
    hub = LogHub()
    hub.append(line("before"))
    with hub.subscribe("app-1", LogFilter(dyno="web")) as sub:
        hub.append(line("w1", "web.1"))
        hub.append(line("r", "router", source="kapal"))
        hub.append(line("other app", "web.1", app_id="app-2"))
        hub.append(line("w2", "web.2"))
        got = [await anext(sub), await anext(sub)]
        assert messages(got) == ["w1", "w2"]
        assert hub.subscriber_count("app-1") == 1
    assert hub.subscriber_count("app-1") == 0


@pytest.mark.anyio
async def test_a_waiting_subscriber_wakes_for_a_new_line() -> None:
    hub = LogHub()
    with hub.subscribe("app-1") as sub:
        waiting = asyncio.ensure_future(anext(sub))
        await asyncio.sleep(0)
        assert not waiting.done()
        hub.append(line("late"))
        assert (await waiting).line.message == "late"


@pytest.mark.anyio
async def test_a_cancelled_wait_loses_no_line() -> None:
    hub = LogHub()
    with hub.subscribe("app-1") as sub:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(sub), 0.01)
        hub.append(line("kept"))
        assert (await anext(sub)).line.message == "kept"


@pytest.mark.anyio
async def test_a_slow_subscriber_drops_lines_and_is_told_where() -> None:
    hub = LogHub(tail_queue=3, clock=fixed_clock)
    with hub.subscribe("app-1") as sub:
        for i in range(1, 6):
            hub.append(line(f"l{i}"))  # l4 and l5 do not fit: dropped, append still returns
        assert messages([await anext(sub) for _ in range(3)]) == ["l1", "l2", "l3"]
        hub.append(line("l6"))
        notice, after = await anext(sub), await anext(sub)
        assert notice.seq is None
        assert notice.line.source == "kapal"
        assert notice.line.dyno == "logplex"
        assert notice.line.message == (
            "Error L11 (Tail buffer overflow) -> This tail session dropped 2 messages "
            "since 2023-11-14T22:13:20.500000+00:00"
        )
        assert after.line.message == "l6"
        assert sub.dropped_total == 2
    # Other readers of the app lose nothing.
    assert len(hub.history("app-1")) == 6


@pytest.mark.anyio
async def test_the_notice_comes_once_the_queue_drains_even_without_new_lines() -> None:
    hub = LogHub(tail_queue=2)
    with hub.subscribe("app-1") as sub:
        for i in range(6):
            hub.append(line(str(i)))
        got = [await anext(sub) for _ in range(3)]
        assert messages(got[:2]) == ["0", "1"]
        assert "dropped 4 messages" in got[2].line.message


@pytest.mark.anyio
async def test_closing_the_hub_ends_tails_after_what_they_hold() -> None:
    hub = LogHub()
    sub = hub.subscribe("app-1")
    hub.append(line("last"))
    hub.close()
    assert messages([entry async for entry in sub]) == ["last"]
    sub.close()
    assert hub.subscriber_count("app-1") == 0
    assert [entry async for entry in hub.subscribe("app-1")] == []


@pytest.mark.anyio
async def test_a_batch_takes_everything_queued_with_the_overflow_notice_in_place() -> None:
    hub = LogHub(clock=fixed_clock)
    with hub.subscribe("app-1", maxsize=3) as tail:
        for i in range(5):
            hub.append(line(f"m{i}"))  # m3 and m4 do not fit
        first = await tail.batch(2)
        assert messages(first) == ["m0", "m1"]
        rest = await tail.batch()
        assert messages(rest)[0] == "m2"
        assert "L11 (Tail buffer overflow)" in rest[1].line.message and "dropped 2" in rest[1].text
        assert rest[1].seq is None
        hub.append(line("m5"))
        assert messages(await tail.batch()) == ["m5"]
        tail.end()
        assert await tail.batch() == []


def test_an_entry_is_formatted_once_as_its_line_would_be() -> None:
    entry = Entry(1, line("hello"))
    assert entry.text == entry.line.format()
    assert entry == Entry(1, line("hello"), "anything")  # the text is derived, not compared
