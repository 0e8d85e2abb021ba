"""plan() for eco apps: web and worker dynos sleep after a while without a request, a request,
a release or a restart wakes them, and a used-up eco quota puts every eco dyno to sleep."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from kapal.runtime.eco import EcoMeter
from kapal.runtime.plan import Observed, Start, Stop, plan
from kapal.runtime.state import Desired, DesiredApp, FormationSpec, ReleaseSpec

CHECKSUM = "SHA256:" + "a" * 64
TYPES = {"web": "python3 -m http.server $PORT", "worker": "python3 worker.py"}
SLEEP = 1800.0
WEB = FormationSpec("web", 1)
WORKER = FormationSpec("worker", 1)


def desired(
    *formation: FormationSpec,
    version: int = 1,
    last_request_at: float | None = None,
    exhausted: bool = False,
) -> Desired:
    release = ReleaseSpec("app1", version, CHECKSUM, {}, TYPES)
    app = DesiredApp(
        "app1",
        release,
        formation or (WEB, WORKER),
        last_request_at=last_request_at,
        eco_exhausted=exhausted,
    )
    return Desired({"app1": app})


def dyno(
    id: int, name: str, state: str = "up", started_at: float = 0.0, size: str = "eco"
) -> Observed:
    return Observed(id, "app1", "formation", name, name.split(".")[0], 1, size, state, started_at)


def awake() -> list[Observed]:
    return [dyno(1, "web.1"), dyno(2, "worker.1")]


def asleep(at: float = 2000.0) -> list[Observed]:
    return [dyno(3, "web.1", "idle", at), dyno(4, "worker.1", "idle", at)]


def act(d: Desired, observed: list[Observed], now: float) -> list[Start | Stop]:
    return plan(d, observed, now, sleep_after=SLEEP)


def test_web_and_worker_sleep_after_the_sleep_period_without_a_request() -> None:
    assert act(desired(last_request_at=100.0), awake(), now=1899.0) == []
    assert act(desired(last_request_at=100.0), awake(), now=1900.0) == [
        Stop(1, "idled"),
        Stop(2, "idled"),
    ]


def test_the_period_counts_from_the_newest_web_dyno_when_it_started_later() -> None:
    """A deploy, a scale or a restart does not put the app to sleep at once."""
    fresh = [dyno(1, "web.1", started_at=5000.0), dyno(2, "worker.1")]
    assert act(desired(last_request_at=100.0), fresh, now=6000.0) == []
    assert act(desired(), fresh, now=6799.0) == []
    assert act(desired(), fresh, now=6800.0) == [Stop(1, "idled"), Stop(2, "idled")]


def test_a_sleeping_app_stays_asleep_until_a_request_after_it_fell_asleep() -> None:
    assert act(desired(last_request_at=100.0), asleep(), now=99999.0) == []
    actions = act(desired(last_request_at=2000.5), asleep(), now=2001.0)
    assert [a for a in actions if isinstance(a, Stop)] == [Stop(3, "woken"), Stop(4, "woken")]
    assert sorted(a.name for a in actions if isinstance(a, Start)) == ["web.1", "worker.1"]


def test_a_new_release_or_a_restart_wakes_a_sleeping_app() -> None:
    released = act(desired(version=2, last_request_at=100.0), asleep(), now=3000.0)
    assert {a.name for a in released if isinstance(a, Start)} == {"web.1", "worker.1"}
    restarted = replace(WEB, restarted_at=2500.0)
    actions = act(desired(restarted, WORKER, last_request_at=100.0), asleep(), now=3000.0)
    assert {a.name for a in actions if isinstance(a, Start)} == {"web.1", "worker.1"}


def test_a_woken_app_sleeps_again_a_period_after_its_new_dynos_started() -> None:
    woken = [dyno(5, "web.1", started_at=2001.0), dyno(6, "worker.1", started_at=2001.0)]
    assert act(desired(last_request_at=2000.5), woken, now=3800.0) == []
    assert act(desired(last_request_at=2000.5), woken, now=3801.0) == [
        Stop(5, "idled"),
        Stop(6, "idled"),
    ]


def test_worker_only_apps_and_apps_of_other_sizes_never_sleep() -> None:
    workers = [dyno(2, "worker.1")]
    assert act(desired(WORKER, last_request_at=None), workers, now=10**6) == []
    basic = (replace(WEB, size="basic"), replace(WORKER, size="basic"))
    running = [dyno(1, "web.1", size="basic"), dyno(2, "worker.1", size="basic")]
    assert act(desired(*basic), running, now=10**6) == []


def test_scaling_web_to_zero_wakes_the_workers_of_a_sleeping_app() -> None:
    actions = act(desired(FormationSpec("web", 0), WORKER), asleep(), now=3000.0)
    assert Stop(3, "forget") in actions and Stop(4, "woken") in actions
    assert [a.name for a in actions if isinstance(a, Start)] == ["worker.1"]


def test_sleeping_is_off_without_a_sleep_period() -> None:
    assert plan(desired(last_request_at=0.0), awake(), now=10**9) == []


def test_a_used_up_quota_puts_every_eco_dyno_to_sleep_whatever_the_requests() -> None:
    actions = act(desired(last_request_at=1000.0, exhausted=True), awake(), now=1001.0)
    assert actions == [Stop(1, "exhausted"), Stop(2, "exhausted")]
    # Worker-only apps too, and a crashed dyno's record becomes an idle one.
    crashed = [dyno(2, "worker.1", "crashed")]
    assert act(desired(WORKER, exhausted=True), crashed, now=5.0) == [Stop(2, "exhausted")]
    # Asleep, requests do not wake it; the month's turn (no longer exhausted) does.
    assert act(desired(last_request_at=9000.0, exhausted=True), asleep(), now=9001.0) == []
    woken = act(desired(last_request_at=9000.0), asleep(), now=9001.0)
    assert {a.name for a in woken if isinstance(a, Start)} == {"web.1", "worker.1"}


def test_a_sleeping_app_scaled_up_starts_nothing_until_it_wakes() -> None:
    more = desired(FormationSpec("web", 2), WORKER, last_request_at=100.0)
    assert act(more, asleep(), now=3000.0) == []


@given(
    last=st.one_of(st.none(), st.floats(0, 10_000)),
    started=st.floats(0, 10_000),
    now=st.floats(0, 20_000),
)
def test_an_awake_app_sleeps_exactly_when_a_full_period_passed(
    last: float | None, started: float, now: float
) -> None:
    running = [dyno(1, "web.1", started_at=started), dyno(2, "worker.1", started_at=started)]
    actions = act(desired(last_request_at=last), running, now)
    quiet = now - max(started, last if last is not None else started) >= SLEEP
    assert actions == ([Stop(1, "idled"), Stop(2, "idled")] if quiet else [])


def test_the_meter_counts_each_eco_dynos_running_time_per_app_and_month() -> None:
    meter = EcoMeter()
    october_end = 1_793_491_200.0  # 2026-11-01T00:00:00Z
    meter.started(1, "a", october_end - 60)
    meter.started(2, "b", october_end)
    assert meter.take(october_end + 30) == {
        ("a", "2026-10"): 60.0,
        ("a", "2026-11"): 30.0,
        ("b", "2026-11"): 30.0,
    }
    meter.stopped(1, october_end + 40)
    used = meter.take(october_end + 100)
    assert used == {("a", "2026-11"): 10.0, ("b", "2026-11"): 70.0}
    meter.give_back(used)  # not stored: counted again next time
    meter.stopped(2, october_end + 100)
    assert meter.take(october_end + 200) == used
