"""The reconcile decision: desired state + observed dynos + now -> which dynos to stop and start.

Pure: no I/O, no clock. The loop re-plans from the full state on every pass, so every action
here is safe to repeat and a lost or failed action is simply planned again.

Observed states: `starting`/`up` (a process runs or is being prepared), `crashed` (a formation
dyno whose process exited; kept to carry its back-off), `stopping` (being stopped: a formation
dyno's replacement may start meanwhile; a release phase or one-off still blocks its own rerun),
`exited` (a finished release phase or one-off, kept until the store no longer lists it so a
stale read cannot start it twice).

A live dyno past its `expires_at` is cycled (formation: replaced, as a restart is, with the
reason `cycled`) or ended (one-off: its time to live is over, reason `expired`).

Eco dynos sleep (kapal.domain.eco): an app with an eco web dyno that had no request for
`sleep_after` seconds, counted from its last request or its newest web dyno's start, whichever
is later, has its eco dynos (web and workers) stopped with the reason `idled`; each leaves an
`idle` record (observed state `idle`, `started_at` when it fell asleep) in its slot. A request
after that, a new release or a restart wakes the app: the records go (reason `woken`) and the
slots start again. Apps without an eco web dyno (worker-only) never sleep. When the owner's
eco dyno hours are used up, every eco dyno of the app sleeps (reason `exhausted`) until they
are not any more, whatever the requests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kapal.domain.eco import ECO
from kapal.runtime.state import Desired, DesiredApp, FormationSpec, ReleaseSpec

LIVE = ("starting", "up")
IDLE = "idle"  # the record of an eco dyno asleep
NOT_FORMATION_TYPES = ("release", "run")  # names the agent gives to other kinds of dynos
# Restart requests within this of a dyno's start are the request it already answered.
_SAME_INSTANT = 0.001


@dataclass(frozen=True, slots=True)
class Observed:
    id: int
    app_id: str
    kind: str  # formation | release | run
    name: str
    type: str
    release_version: int
    size: str
    state: str
    started_at: float
    crashes: int = 0
    retry_at: float | None = None
    attach: bool = False
    expires_at: float | None = None  # formation: when it is cycled; one-off: when it ends


@dataclass(frozen=True, slots=True)
class Start:
    kind: str
    app_id: str
    name: str
    type: str
    command: str
    release: ReleaseSpec
    size: str = "eco"
    crashes: int = 0  # consecutive crashes of this dyno so far (carried into its back-off)


@dataclass(frozen=True, slots=True)
class Stop:
    id: int
    # replaced | cycled | scaled | deleted | restart | expired | forget | idled | exhausted |
    # woken ...
    reason: str


Action = Start | Stop


def plan(
    desired: Desired,
    observed: Sequence[Observed],
    now: float,
    *,
    sleep_after: float | None = None,
) -> list[Action]:
    """Stops first, then starts; at most one start per dyno name. Eco apps sleep after
    `sleep_after` seconds without a request (None: never)."""
    actions: list[Action] = []
    by_kind: dict[str, list[Observed]] = defaultdict(list)
    for o in observed:
        by_kind[o.kind].append(o)
    formation = [o for o in by_kind["formation"] if o.state != "stopping"]
    actions += _formation(desired, formation, now, sleep_after)
    actions += _release_phase(desired, by_kind["release"])
    actions += _one_offs(desired, by_kind["run"], now)
    return [a for a in actions if isinstance(a, Stop)] + [
        a for a in actions if isinstance(a, Start)
    ]


def _formation(
    desired: Desired, observed: Iterable[Observed], now: float, sleep_after: float | None
) -> list[Action]:
    slots: dict[tuple[str, str], list[Observed]] = defaultdict(list)
    by_app: dict[str, list[Observed]] = defaultdict(list)
    for o in observed:
        slots[(o.app_id, o.name)].append(o)
        by_app[o.app_id].append(o)
    actions: list[Action] = []
    for app in desired.apps.values():
        release = app.release
        if release is None or release.slug_checksum is None:
            continue
        types = release.process_types
        wanted = [
            f
            for f in app.formation
            if f.quantity > 0 and f.type in types and f.type not in NOT_FORMATION_TYPES
        ]
        sleeping = _asleep(app, release, wanted, by_app.get(app.app_id, ()), now, sleep_after)
        for formation in wanted:
            command = release.process_types[formation.type]
            for index in range(1, formation.quantity + 1):
                name = f"{formation.type}.{index}"
                found = slots.pop((app.app_id, name), [])
                idle = [o for o in found if o.state == IDLE]
                awake = [o for o in found if o.state != IDLE]
                if sleeping is not None and formation.size == ECO:
                    actions += [Stop(o.id, sleeping) for o in awake]
                    continue
                actions += [Stop(o.id, "woken") for o in idle]
                actions += _slot(app, release, formation, name, command, awake, now)
    # Whatever is left is not wanted: scaled down, type or release gone, app deleted.
    for (app_id, _), leftovers in slots.items():
        reason = "scaled" if app_id in desired.apps else "deleted"
        actions += [Stop(o.id, reason if o.state in LIVE else "forget") for o in leftovers]
    return actions


def _asleep(
    app: DesiredApp,
    release: ReleaseSpec,
    formation: Sequence[FormationSpec],
    observed: Iterable[Observed],
    now: float,
    sleep_after: float | None,
) -> str | None:
    """Whether the app's eco dynos sleep: None if not, else the reason to stop those awake
    (`exhausted`: the owner's eco dyno hours are used up; `idled`: no request for a while)."""
    eco = {f.type for f in formation if f.size == ECO}
    if not eco:
        return None
    if app.eco_exhausted:
        return "exhausted"
    if sleep_after is None or "web" not in eco:
        return None  # worker-only apps do not sleep
    last_request = app.last_request_at if app.last_request_at is not None else float("-inf")
    mine = [o for o in observed if o.type in eco]
    idle = [o for o in mine if o.state == IDLE]
    if idle:
        slept_at = min(o.started_at for o in idle)
        restarted = any(slept_at < f.restarted_at <= now for f in formation if f.type in eco)
        released = any(o.release_version != release.version for o in idle)
        woken = last_request > slept_at or restarted or released
        if not woken and not any(o.state in LIVE for o in mine):
            return "idled"
    web = [o.started_at for o in mine if o.type == "web" and o.state in LIVE]
    if not web:
        return None  # nothing runs yet (a deploy, a scale, a wake): it starts
    active = max(last_request, *web)
    return "idled" if now - active >= sleep_after else None


def _slot(
    app: DesiredApp,
    release: ReleaseSpec,
    formation: FormationSpec,
    name: str,
    command: str,
    found: list[Observed],
    now: float,
) -> list[Action]:
    """One dyno name (`web.1`): keep, replace or restart what runs under it."""
    requested = app.restart_requests.get(name)

    def current(o: Observed) -> bool:
        # Restarts count once passed, by this clock: a restart stamped ahead of it (another
        # machine's clock) waits rather than replacing each new dyno again.
        restarted = o.started_at < formation.restarted_at <= now
        return o.release_version == release.version and o.size == formation.size and not restarted

    def restart_due(o: Observed) -> bool:
        return requested is not None and o.started_at + _SAME_INSTANT < requested <= now

    def cycle_due(o: Observed) -> bool:
        return o.expires_at is not None and o.expires_at <= now

    def stop_stale(o: Observed) -> Stop:
        return Stop(o.id, "cycled" if cycle_due(o) else "replaced")

    live = sorted((o for o in found if o.state in LIVE), key=lambda o: o.started_at)
    fresh = [o for o in live if current(o) and not restart_due(o) and not cycle_due(o)]
    stale = [o for o in live if o not in fresh]
    crashed = sorted((o for o in found if o.state == "crashed"), key=lambda o: o.started_at)
    retrying = [o for o in crashed if current(o)]

    actions: list[Action] = [Stop(o.id, "forget") for o in crashed if o not in retrying[-1:]]
    start = Start("formation", app.app_id, name, formation.type, command, release, formation.size)
    # A new web dyno takes over from the old one only once it accepts connections: the newest
    # old one that is up serves until then. Other process types are replaced at once.
    up = [o for o in stale if o.state == "up"]
    serving = up[-1] if up and formation.type == "web" else None
    if fresh:
        keep = fresh[-1]
        actions += [Stop(o.id, "replaced") for o in fresh[:-1]]
        actions += [Stop(o.id, "forget") for o in retrying[-1:]]
        actions += [stop_stale(o) for o in stale if o is not serving or keep.state == "up"]
    elif retrying:
        last = retrying[-1]
        due = last.retry_at if last.retry_at is not None else now
        if requested is not None and requested > last.started_at:
            due = min(due, requested)  # `ps:restart web.1` on a crashed dyno: no more waiting
        # The new release crashed: the old dynos go now rather than after the back-off.
        actions += [stop_stale(o) for o in stale]
        if due <= now:
            actions += [Stop(last.id, "forget"), _with_crashes(start, last.crashes)]
    else:
        actions.append(start)
        actions += [stop_stale(o) for o in stale if o is not serving]
    return actions


def _with_crashes(start: Start, crashes: int) -> Start:
    return Start(
        start.kind,
        start.app_id,
        start.name,
        start.type,
        start.command,
        start.release,
        start.size,
        crashes,
    )


def _release_phase(desired: Desired, observed: Iterable[Observed]) -> list[Action]:
    """Pending releases run one at a time per app, oldest version first."""
    running: dict[str, list[Observed]] = defaultdict(list)
    for o in observed:
        running[o.app_id].append(o)
    first: dict[str, tuple[int, Start]] = {}
    wanted: set[tuple[str, str]] = set()
    for pending in desired.pending:
        release = pending.release
        if release.app_id not in desired.apps or release.slug_checksum is None:
            continue
        name = f"release.{release.version}"
        wanted.add((release.app_id, name))
        start = Start("release", release.app_id, name, "release", pending.command, release)
        if release.app_id not in first or release.version < first[release.app_id][0]:
            first[release.app_id] = (release.version, start)
    actions: list[Action] = []
    for app_id, obs in running.items():
        for o in obs:
            if (app_id, o.name) not in wanted and o.state != "stopping":
                actions.append(Stop(o.id, "forget" if o.state == "exited" else "deleted"))
    for app_id, (_, start) in first.items():
        # One at a time, and never twice: a finished run waits for the store to say so.
        if not any(o.state != "exited" or o.name == start.name for o in running.get(app_id, ())):
            actions.append(start)
    return actions


def _one_offs(desired: Desired, observed: Iterable[Observed], now: float) -> list[Action]:
    """Detached one-offs start when their row appears and stop when it goes (or is restarted);
    attached ones are started by the rendezvous and only stopped here."""
    rows = {(r.app_id, r.name): r for r in desired.one_offs}
    actions: list[Action] = []
    seen: set[tuple[str, str]] = set()
    for o in observed:
        key = (o.app_id, o.name)
        seen.add(key)
        row = rows.get(key)
        if o.state == "stopping":
            continue
        if o.state == "exited":
            if row is None:
                actions.append(Stop(o.id, "forget"))
        elif row is None or o.app_id not in desired.apps:
            actions.append(Stop(o.id, "deleted"))
        elif row.restart_at is not None and o.started_at + _SAME_INSTANT < row.restart_at <= now:
            actions.append(Stop(o.id, "restart"))
        elif o.expires_at is not None and o.expires_at <= now:
            actions.append(Stop(o.id, "expired"))
    for key, row in rows.items():
        release = row.release
        if (
            key not in seen
            and not row.attach
            and row.state == "starting"
            and row.app_id in desired.apps
            and release is not None
            and release.slug_checksum is not None
        ):
            actions.append(
                Start("run", row.app_id, row.name, "run", row.command, release, row.size)
            )
    return actions
