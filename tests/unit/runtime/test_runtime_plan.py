"""plan(): which dynos to stop and start, from desired state, observed dynos and the time."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from kapal.runtime.plan import LIVE, Observed, Start, Stop, plan
from kapal.runtime.state import (
    Desired,
    DesiredApp,
    FormationSpec,
    OneOffSpec,
    PendingRelease,
    ReleaseSpec,
)

CHECKSUM = "SHA256:" + "a" * 64
TYPES = {"web": "python3 -m http.server $PORT", "worker": "python3 worker.py"}


def release(version: int = 1, app_id: str = "app1") -> ReleaseSpec:
    return ReleaseSpec(app_id, version, CHECKSUM, {"K": "v"}, TYPES)


def desired(*formation: FormationSpec, version: int = 1, **kw: object) -> Desired:
    app = DesiredApp("app1", release(version), tuple(formation), **kw)  # type: ignore[arg-type]
    return Desired({"app1": app})


def dyno(
    id: int, name: str, version: int = 1, state: str = "up", started_at: float = 10.0, **kw: object
) -> Observed:
    type_ = name.split(".")[0]
    return Observed(id, "app1", "formation", name, type_, version, "eco", state, started_at, **kw)  # type: ignore[arg-type]


def starts(actions: list[Start | Stop]) -> list[str]:
    return [a.name for a in actions if isinstance(a, Start)]


def stops(actions: list[Start | Stop]) -> dict[int, str]:
    return {a.id: a.reason for a in actions if isinstance(a, Stop)}


def test_starts_the_formation() -> None:
    actions = plan(desired(FormationSpec("web", 2), FormationSpec("worker", 1)), [], now=100)
    assert starts(actions) == ["web.1", "web.2", "worker.1"]
    web = actions[0]
    assert isinstance(web, Start)
    assert (web.kind, web.command, web.release.version, web.crashes) == (
        "formation",
        TYPES["web"],
        1,
        0,
    )


def test_nothing_to_do_when_dynos_match() -> None:
    observed = [dyno(1, "web.1"), dyno(2, "web.2", state="starting")]
    assert plan(desired(FormationSpec("web", 2)), observed, now=100) == []


def test_scale_down_stops_the_highest_numbers() -> None:
    observed = [dyno(1, "web.1"), dyno(2, "web.2"), dyno(3, "web.3")]
    actions = plan(desired(FormationSpec("web", 1)), observed, now=100)
    assert stops(actions) == {2: "scaled", 3: "scaled"}
    assert starts(actions) == []


def test_types_the_release_does_not_declare_run_nothing() -> None:
    actions = plan(desired(FormationSpec("clock", 1)), [dyno(1, "clock.1")], now=100)
    assert stops(actions) == {1: "scaled"}
    assert starts(actions) == []


def test_new_release_keeps_old_web_dyno_until_the_new_one_is_up() -> None:
    old = dyno(1, "web.1", version=1)
    actions = plan(desired(FormationSpec("web", 1), version=2), [old], now=100)
    assert starts(actions) == ["web.1"]
    assert stops(actions) == {}
    new = dyno(2, "web.1", version=2, state="starting", started_at=100)
    assert plan(desired(FormationSpec("web", 1), version=2), [old, new], now=101) == []
    up = replace(new, state="up")
    actions = plan(desired(FormationSpec("web", 1), version=2), [old, up], now=102)
    assert actions == [Stop(1, "replaced")]


def test_new_release_replaces_other_types_at_once() -> None:
    actions = plan(desired(FormationSpec("worker", 1), version=2), [dyno(1, "worker.1")], now=100)
    assert stops(actions) == {1: "replaced"}
    assert starts(actions) == ["worker.1"]


def test_old_web_dyno_goes_when_the_new_one_crashed() -> None:
    old = dyno(1, "web.1", version=1)
    new = dyno(2, "web.1", version=2, state="crashed", started_at=100, crashes=2, retry_at=130)
    actions = plan(desired(FormationSpec("web", 1), version=2), [old, new], now=110)
    assert actions == [Stop(1, "replaced")]


def test_restart_replaces_dynos_started_before_it() -> None:
    formation = FormationSpec("worker", 1, restarted_at=50)
    actions = plan(desired(formation), [dyno(1, "worker.1", started_at=10)], now=100)
    assert stops(actions) == {1: "replaced"}
    assert starts(actions) == ["worker.1"]
    assert plan(desired(formation), [dyno(2, "worker.1", started_at=60)], now=100) == []


def test_size_change_replaces_the_dyno() -> None:
    actions = plan(desired(FormationSpec("worker", 1, size="basic")), [dyno(1, "worker.1")], 100)
    assert stops(actions) == {1: "replaced"}
    start = actions[-1]
    assert isinstance(start, Start) and start.size == "basic"


def test_restart_request_on_one_dyno() -> None:
    observed = [dyno(1, "web.1", started_at=10), dyno(2, "web.2", started_at=10)]
    ask = desired(FormationSpec("web", 2), restart_requests={"web.2": 50.0})
    assert starts(plan(ask, observed, now=40)) == []  # not due yet
    actions = plan(ask, observed, now=60)
    assert starts(actions) == ["web.2"]
    assert stops(actions) == {}  # the old web.2 serves until the new one is up
    again = [observed[0], dyno(3, "web.2", started_at=60)]
    assert plan(ask, again, now=70) == []


def test_crashed_dyno_waits_for_its_back_off() -> None:
    crashed = dyno(1, "worker.1", state="crashed", crashes=3, retry_at=130)
    assert plan(desired(FormationSpec("worker", 1)), [crashed], now=129) == []
    actions = plan(desired(FormationSpec("worker", 1)), [crashed], now=130)
    assert stops(actions) == {1: "forget"}
    start = actions[-1]
    assert isinstance(start, Start) and start.crashes == 3


def test_restart_request_ends_the_back_off_early() -> None:
    crashed = dyno(1, "worker.1", state="crashed", crashes=3, retry_at=500)
    ask = desired(FormationSpec("worker", 1), restart_requests={"worker.1": 120.0})
    assert starts(plan(ask, [crashed], now=121)) == ["worker.1"]


def test_new_release_resets_the_back_off() -> None:
    crashed = dyno(1, "worker.1", version=1, state="crashed", crashes=5, retry_at=900)
    actions = plan(desired(FormationSpec("worker", 1), version=2), [crashed], now=100)
    assert stops(actions) == {1: "forget"}
    start = actions[-1]
    assert isinstance(start, Start) and start.crashes == 0


def test_size_change_keeps_the_old_web_dyno_until_the_new_one_is_up() -> None:
    resized = desired(FormationSpec("web", 1, size="standard-2x"))
    old = dyno(1, "web.1")
    actions = plan(resized, [old], now=100)
    assert stops(actions) == {}
    [start] = actions
    assert isinstance(start, Start) and start.size == "standard-2x"
    new = Observed(2, "app1", "formation", "web.1", "web", 1, "standard-2x", "up", 100)
    assert plan(resized, [old, new], now=101) == [Stop(1, "replaced")]


def test_daily_cycle_replaces_a_dyno_once_due() -> None:
    worker = dyno(1, "worker.1", expires_at=500.0)
    assert plan(desired(FormationSpec("worker", 1)), [worker], now=499) == []
    actions = plan(desired(FormationSpec("worker", 1)), [worker], now=500)
    assert stops(actions) == {1: "cycled"}
    assert starts(actions) == ["worker.1"]


def test_daily_cycle_of_a_web_dyno_waits_for_its_successor() -> None:
    old = dyno(1, "web.1", expires_at=500.0)
    actions = plan(desired(FormationSpec("web", 1)), [old], now=600)
    assert (starts(actions), stops(actions)) == (["web.1"], {})
    new = dyno(2, "web.1", state="starting", started_at=600, expires_at=90_000.0)
    assert plan(desired(FormationSpec("web", 1)), [old, new], now=601) == []
    up = replace(new, state="up")
    assert plan(desired(FormationSpec("web", 1)), [old, up], now=602) == [Stop(1, "cycled")]


def test_daily_cycle_leaves_crashed_dynos_to_their_back_off() -> None:
    crashed = dyno(1, "worker.1", state="crashed", crashes=3, retry_at=700, expires_at=500.0)
    assert plan(desired(FormationSpec("worker", 1)), [crashed], now=600) == []


def test_one_off_ends_after_its_time_to_live() -> None:
    row = OneOffSpec("app1", "run.1234", "sleep 1000", release(1))
    state = Desired({"app1": DesiredApp("app1", release(1))}, (), (row,))
    running = Observed(1, "app1", "run", "run.1234", "run", 1, "eco", "up", 100, expires_at=200)
    assert plan(state, [running], now=199) == []
    assert plan(state, [running], now=200) == [Stop(1, "expired")]
    # Once it is stopping (or exited), it is left to finish; it never starts again.
    assert plan(state, [replace(running, state="stopping")], now=300) == []
    assert plan(state, [replace(running, state="exited")], now=300) == []


def test_deleted_app_stops_everything() -> None:
    observed = [
        dyno(1, "web.1"),
        Observed(2, "app1", "release", "release.2", "release", 2, "eco", "up", 10),
        Observed(3, "app1", "run", "run.1234", "run", 1, "eco", "up", 10),
        dyno(4, "worker.1", state="crashed", retry_at=500),
    ]
    actions = plan(Desired(), observed, now=100)
    assert stops(actions) == {1: "deleted", 2: "deleted", 3: "deleted", 4: "forget"}
    assert starts(actions) == []


def test_stopping_dynos_are_left_alone() -> None:
    observed = [dyno(1, "web.1", state="stopping")]
    assert starts(plan(desired(FormationSpec("web", 1)), observed, now=100)) == ["web.1"]
    assert plan(desired(FormationSpec("web", 0)), observed, now=100) == []


def test_release_phase_runs_pending_releases_in_order() -> None:
    pending = (PendingRelease(release(3), "migrate"), PendingRelease(release(2), "migrate"))
    state = Desired({"app1": DesiredApp("app1", release(1))}, pending)
    actions = plan(state, [], now=100)
    assert starts(actions) == ["release.2"]
    first = actions[0]
    assert isinstance(first, Start) and first.kind == "release" and first.command == "migrate"
    running = Observed(1, "app1", "release", "release.2", "release", 2, "eco", "up", 100)
    assert plan(state, [running], now=101) == []
    # Finished but the store not read since: it must not run twice.
    assert plan(state, [replace(running, state="exited")], now=102) == []
    later = Desired(state.apps, pending[:1])
    actions = plan(later, [replace(running, state="exited")], now=103)
    assert stops(actions) == {1: "forget"}
    assert starts(actions) == ["release.3"]


def test_a_release_phase_being_stopped_is_not_run_again() -> None:
    # Timed out and being stopped: its release is still pending until the stop is over.
    state = Desired({"app1": DesiredApp("app1", release(1))}, (PendingRelease(release(2), "m"),))
    stopping = Observed(1, "app1", "release", "release.2", "release", 2, "eco", "stopping", 100)
    assert plan(state, [stopping], now=101) == []
    assert plan(Desired(), [stopping], now=101) == []


def test_a_one_off_being_stopped_is_left_alone() -> None:
    row = OneOffSpec("app1", "run.1234", "echo hi", release(1))
    state = Desired({"app1": DesiredApp("app1", release(1))}, (), (row,))
    stopping = Observed(1, "app1", "run", "run.1234", "run", 1, "eco", "stopping", 100)
    assert plan(state, [stopping], now=101) == []
    assert plan(Desired(), [stopping], now=101) == []


def test_detached_one_offs_start_and_stop_with_their_row() -> None:
    row = OneOffSpec("app1", "run.1234", "echo hi", release(1))
    attached = OneOffSpec("app1", "run.5678", "bash", release(1), attach=True)
    state = Desired({"app1": DesiredApp("app1", release(1))}, (), (row, attached))
    assert starts(plan(state, [], now=100)) == ["run.1234"]
    running = Observed(1, "app1", "run", "run.1234", "run", 1, "eco", "up", 100)
    assert plan(state, [running], now=101) == []
    gone = Desired(state.apps, (), (attached,))
    assert stops(plan(gone, [running], now=102)) == {1: "deleted"}
    stopped = Desired(state.apps, (), (replace(row, restart_at=105.0), attached))
    assert stops(plan(stopped, [running], now=106)) == {1: "restart"}
    done = replace(running, state="exited")
    assert plan(state, [done], now=107) == []
    assert stops(plan(gone, [done], now=108)) == {1: "forget"}


# Invariants over arbitrary states.

names = st.sampled_from(["web", "worker"])


@st.composite
def states(draw: st.DrawFn) -> tuple[Desired, list[Observed], float]:
    now = draw(st.floats(0, 1000))
    version = draw(st.integers(1, 3))
    formation = tuple(
        FormationSpec(t, draw(st.integers(0, 3)), restarted_at=draw(st.floats(0, 1000)))
        for t in draw(st.sets(names))
    )
    requests = draw(st.dictionaries(st.sampled_from(["web.1", "worker.2"]), st.floats(0, 1000)))
    app = DesiredApp("app1", release(version), formation, requests)
    observed = []
    for i in range(draw(st.integers(0, 8))):
        state = draw(st.sampled_from(["starting", "up", "crashed", "stopping"]))
        observed.append(
            Observed(
                i,
                "app1",
                "formation",
                f"{draw(names)}.{draw(st.integers(1, 4))}",
                "?",
                draw(st.integers(1, 3)),
                "eco",
                state,
                draw(st.floats(0, 1000)),
                draw(st.integers(0, 5)),
                draw(st.floats(0, 2000)) if state == "crashed" else None,
                expires_at=draw(st.none() | st.floats(0, 2000)),
            )
        )
    observed = [replace(o, type=o.name.split(".")[0]) for o in observed]
    return Desired({"app1": app}, ()), observed, now


def after(observed: list[Observed], actions: list[Start | Stop], now: float) -> list[Observed]:
    """The observed dynos once the actions are done (stops take effect, starts are starting)."""
    stopped = {a.id for a in actions if isinstance(a, Stop)}
    result = [o for o in observed if o.id not in stopped and o.state != "stopping"]
    for i, a in enumerate(a for a in actions if isinstance(a, Start)):
        version = a.release.version
        result.append(
            Observed(1000 + i, a.app_id, a.kind, a.name, a.type, version, a.size, "starting", now)
        )
    return result


@settings(max_examples=300, deadline=None)
@given(states())
def test_plan_invariants(state: tuple[Desired, list[Observed], float]) -> None:
    desired_state, observed, now = state
    actions = plan(desired_state, observed, now)
    ids = {o.id for o in observed}
    assert all(a.id in ids for a in actions if isinstance(a, Stop))
    assert not any(isinstance(a, Stop) for a in actions[len(stops(actions)) :])  # stops first
    assert max(Counter(starts(actions)).values(), default=0) <= 1

    result = after(observed, actions, now)
    app = desired_state.apps["app1"]
    assert app.release is not None
    quantity = {f.type: f.quantity for f in app.formation}
    live = [o for o in result if o.state in LIVE]
    per_slot: dict[str, list[Observed]] = {}
    for o in live:
        index = int(o.name.split(".")[1])
        assert index <= quantity.get(o.type, 0), f"{o.name} runs beyond the formation"
        per_slot.setdefault(o.name, []).append(o)
    for type_, count in quantity.items():
        assert len({o.name for o in live if o.type == type_}) <= count
    for name, slot in per_slot.items():
        if len(slot) > 1:
            # Only during a web replacement: the old one serves until the new one is up.
            assert len(slot) == 2 and name.startswith("web.")
            assert sorted(o.state for o in slot) == ["starting", "up"]

    # Planning again with nothing changed (no dyno came up, none crashed) does nothing new.
    again = plan(desired_state, result, now)
    assert starts(again) == []


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 10),
    st.floats(0, 1000),
    st.floats(0, 1000),
    st.floats(0, 1000),
)
def test_crashed_dyno_never_restarts_before_it_is_due(
    crashes: int, started: float, retry_at: float, now: float
) -> None:
    crashed = dyno(1, "worker.1", started_at=started, state="crashed", crashes=crashes)
    crashed = replace(crashed, retry_at=retry_at)
    actions = plan(desired(FormationSpec("worker", 1)), [crashed], now)
    if now < retry_at:
        assert actions == []
    else:
        assert actions == [
            Stop(1, "forget"),
            Start(
                "formation",
                "app1",
                "worker.1",
                "worker",
                TYPES["worker"],
                release(1),
                "eco",
                crashes,
            ),
        ]
