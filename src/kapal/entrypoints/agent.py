"""Composition root of the agent process: dynos (reconcile loop, rendezvous) and the log hub.

`AgentStore` is the runtime's view of the database (runtime and store may not import each
other); everything else here only wires parts together.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

import uvloop
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from kapal.domain.hashes import hash_secret
from kapal.domain.uids import APP_UID_BASE
from kapal.entrypoints.logging_setup import configure as configure_logging
from kapal.logs.hub import LogHub
from kapal.logs.ingest import LogIngest
from kapal.logs.sessions import SessionRequest, session_app, session_server
from kapal.runtime.driver import Driver, PlainDriver
from kapal.runtime.dyno import Timing
from kapal.runtime.gateway import Gateway
from kapal.runtime.jailed import JailedDriver
from kapal.runtime.lifetimes import Lifetimes
from kapal.runtime.reconcile import ReconcileLoop
from kapal.runtime.rendezvous import Rendezvous
from kapal.runtime.slugs import SlugCache
from kapal.runtime.state import (
    Desired,
    DesiredApp,
    DynoRow,
    FormationSpec,
    MemoryReading,
    OneOffSpec,
    PendingRelease,
    ReleaseSpec,
)
from kapal.runtime.supervisor import Supervisor
from kapal.sandbox.cgroups import Layout
from kapal.sandbox.jail import detect
from kapal.settings import Settings
from kapal.store.db import Store
from kapal.store.models import (
    App,
    Dyno,
    Formation,
    LogSession,
    MemorySample,
    Release,
    Slug,
    now,
)
from kapal.store.notify import WakeListener, notify
from kapal.system_users import RunAs, unprivileged

logger = logging.getLogger(__name__)

MEMORY_EVERY = 20.0  # seconds between stored memory samples of each dyno
MEMORY_KEEP = timedelta(hours=24)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class AgentStore:
    """The runtime's StateStore over the database."""

    def __init__(self, store: Store, on_rows_changed: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_rows_changed = on_rows_changed

    def read(self) -> Desired:
        with self.store.snapshot() as s:
            newest = (
                select(Release.app_id, func.max(Release.version).label("version"))
                .where(Release.status == "succeeded")
                .group_by(Release.app_id)
                .subquery()
            )
            current = s.scalars(
                select(Release).join(
                    newest,
                    and_(Release.app_id == newest.c.app_id, Release.version == newest.c.version),
                )
            ).all()
            pending = s.scalars(
                select(Release)
                .where(Release.status == "pending", Release.release_command.is_not(None))
                .order_by(Release.app_id, Release.version)
            ).all()
            one_offs = s.scalars(select(Dyno).where(Dyno.type == "run")).all()
            wanted = {(d.app_id, d.release_version) for d in one_offs}
            have = {(r.app_id, r.version) for r in (*current, *pending)}
            extra = [
                r
                for r in s.scalars(
                    select(Release).where(Release.app_id.in_(sorted({a for a, _ in wanted - have})))
                )
                if (r.app_id, r.version) in wanted
            ]
            specs = _release_specs(s, (*current, *pending, *extra))
            formations: dict[str, list[FormationSpec]] = {}
            for f in s.scalars(select(Formation)):
                spec = FormationSpec(f.type, f.quantity, f.size, f.restarted_at.timestamp())
                formations.setdefault(f.app_id, []).append(spec)
            requests: dict[str, dict[str, float]] = {}
            for app_id, name, restart_at in s.execute(
                select(Dyno.app_id, Dyno.name, Dyno.restart_at).where(
                    Dyno.type != "run", Dyno.restart_at.is_not(None)
                )
            ):
                if restart_at is not None:
                    requests.setdefault(app_id, {})[name] = restart_at.timestamp()
            releases = {r.app_id: specs[(r.app_id, r.version)] for r in current}
            apps = {
                app_id: DesiredApp(
                    app_id,
                    releases.get(app_id),
                    tuple(formations.get(app_id, ())),
                    requests.get(app_id, {}),
                )
                for app_id in s.scalars(select(App.id))
            }
            return Desired(
                apps,
                tuple(
                    PendingRelease(specs[(r.app_id, r.version)], r.release_command or "")
                    for r in pending
                ),
                tuple(_one_off(d, specs.get((d.app_id, d.release_version))) for d in one_offs),
            )

    def record_memory(self, readings: Sequence[MemoryReading], keep: timedelta) -> None:
        """Store one sample per dyno; forget samples older than `keep`."""
        with self.store.session() as s:
            s.execute(delete(MemorySample).where(MemorySample.at < now() - keep))
            live = set(s.scalars(select(App.id).where(App.id.in_({r.app_id for r in readings}))))
            s.add_all(
                MemorySample(
                    app_id=r.app_id,
                    dyno=r.dyno,
                    memory_mb=round(r.used / 2**20, 1),
                    quota_mb=r.quota >> 20,
                )
                for r in readings
                if r.app_id in live
            )

    def write_dynos(self, rows: Sequence[DynoRow]) -> None:
        with self.store.session() as s:
            apps = set(s.scalars(select(App.id)))
            existing = {
                (d.app_id, d.name): d for d in s.scalars(select(Dyno).where(Dyno.type != "run"))
            }
            for row in rows:
                if row.app_id not in apps:
                    continue  # deleted meanwhile; its dynos are being stopped
                dyno = existing.pop((row.app_id, row.name), None)
                if dyno is None:
                    dyno = Dyno(app_id=row.app_id, name=row.name)
                    s.add(dyno)
                _update(dyno, row)
            for dyno in existing.values():
                s.delete(dyno)
            changed = bool(s.new or s.deleted or any(s.is_modified(d) for d in s.dirty))
        if changed:
            self.on_rows_changed()

    def leftover_dynos(self, now: float) -> list[DynoRow]:
        restart = _at(now)
        with self.store.session() as s:
            rows = s.scalars(select(Dyno).where(or_(Dyno.type != "run", Dyno.state != "starting")))
            found = []
            for dyno in rows:
                running = bool(dyno.pid) and dyno.state in ("starting", "up")
                if running:
                    found.append(_leftover(dyno))
                if running and dyno.type not in ("release", "run"):
                    dyno.restart_at = restart  # replaced as `ps:restart` would do it
                else:
                    s.delete(dyno)
            return found

    def finish_release(self, app_id: str, version: int, succeeded: bool, output: str) -> None:
        with self.store.session() as s:
            release = s.scalar(
                select(Release).where(
                    Release.app_id == app_id,
                    Release.version == version,
                    Release.status == "pending",
                )
            )
            if release is not None:
                release.status = "succeeded" if succeeded else "failed"
                release.output = output

    def claim_attach(self, attach_hash: str) -> OneOffSpec | None:
        with self.store.session() as s:
            dyno = s.scalar(
                select(Dyno).where(
                    Dyno.attach_hash == attach_hash, Dyno.type == "run", Dyno.state == "starting"
                )
            )
            if dyno is None:
                return None
            dyno.state = "up"  # taken: the secret works once
            release = s.scalar(
                select(Release).where(
                    Release.app_id == dyno.app_id, Release.version == dyno.release_version
                )
            )
            specs = _release_specs(s, [release] if release is not None else [])
            return _one_off(dyno, specs.get((dyno.app_id, dyno.release_version)))

    def one_off_started(self, app_id: str, name: str, pid: int | None) -> None:
        with self.store.session() as s:
            dyno = s.scalar(select(Dyno).where(Dyno.app_id == app_id, Dyno.name == name))
            if dyno is not None:
                dyno.state, dyno.pid = "up", pid

    def one_off_finished(self, app_id: str, name: str) -> None:
        with self.store.session() as s:
            dyno = s.scalar(select(Dyno).where(Dyno.app_id == app_id, Dyno.name == name))
            if dyno is not None:
                s.delete(dyno)

    def expire_unattached(self, created_before: float) -> list[tuple[str, str]]:
        with self.store.session() as s:
            rows = s.scalars(
                select(Dyno).where(
                    Dyno.type == "run",
                    Dyno.attach.is_(True),
                    Dyno.state == "starting",
                    Dyno.created_at < _at(created_before),
                )
            ).all()
            for dyno in rows:
                s.delete(dyno)
            return [(d.app_id, d.name) for d in rows]

    def log_session(self, secret: str) -> SessionRequest | None:
        """The log session a URL's secret names, unless expired."""
        with self.store.snapshot() as s:
            row = s.get(LogSession, hash_secret(secret))
            if row is None or row.expires_at <= now():
                return None
            return SessionRequest(row.app_id, row.dyno, row.source, row.lines, row.tail)


def _release_specs(s: Session, releases: Iterable[Release]) -> dict[tuple[str, int], ReleaseSpec]:
    releases = list(releases)
    slugs = {
        slug.id: slug
        for slug in s.scalars(
            select(Slug).where(Slug.id.in_({r.slug_id for r in releases if r.slug_id}))
        )
    }
    app_ids = {r.app_id for r in releases}
    uids = {
        row.id: row.uid for row in s.execute(select(App.id, App.uid).where(App.id.in_(app_ids)))
    }
    specs = {}
    for r in releases:
        slug = slugs.get(r.slug_id) if r.slug_id else None
        specs[(r.app_id, r.version)] = ReleaseSpec(
            r.app_id,
            r.version,
            slug.checksum if slug else None,
            dict(r.config or {}),
            dict(slug.process_types) if slug else {},
            uids.get(r.app_id),
        )
    return specs


def _one_off(dyno: Dyno, release: ReleaseSpec | None) -> OneOffSpec:
    return OneOffSpec(
        dyno.app_id,
        dyno.name,
        dyno.command,
        release,
        dyno.size,
        dyno.attach,
        dyno.state,
        dyno.restart_at.timestamp() if dyno.restart_at else None,
    )


def _leftover(dyno: Dyno) -> DynoRow:
    # The row does not keep when the dyno started; it was last written after that, which is
    # what both a restart request and telling the dyno from a later user of its pid need.
    return DynoRow(
        dyno.app_id,
        dyno.name,
        dyno.type,
        dyno.command,
        dyno.size,
        dyno.release_version,
        dyno.state,
        dyno.port,
        dyno.pid,
        dyno.updated_at.timestamp(),
    )


def _update(dyno: Dyno, row: DynoRow) -> None:
    """Assign only what differs, so an unchanged dyno is not written (nor its updated_at)."""
    values: dict[str, object] = {
        "type": row.type,
        "command": row.command,
        "size": row.size,
        "release_version": row.release_version,
        "state": row.state,
        "port": row.port,
        "pid": row.pid,
    }
    asked = dyno.restart_at
    if row.retry_at is not None:
        # Keep an earlier restart the API asked for meanwhile (`ps:restart` on a crashed dyno).
        retry = _at(row.retry_at)
        if asked is None or asked.timestamp() <= row.started_at or asked > retry:
            values["restart_at"] = retry
    elif asked is not None and asked.timestamp() <= row.started_at + 0.001:
        values["restart_at"] = None  # a restart request (or retry time) this dyno answered
    for key, value in values.items():
        if getattr(dyno, key, None) != value:
            setattr(dyno, key, value)


def dyno_user() -> RunAs | None:
    """Who dynos run as: an unprivileged user when the agent is root, else the agent's own."""
    run_as = unprivileged()
    if run_as is None:
        logger.warning(
            "NOT ROOT: dynos run as this agent's own user (uid %d), with no privileges to "
            "drop. Their code can read everything this user can: Kapal's state database, "
            "secrets and every app's config vars. Run Kapal as root (`make up`) to run dynos "
            "and builds as an unprivileged user.",
            os.geteuid(),
        )
    else:
        logger.info("dynos run as user %s (uid %d)", run_as.name, run_as.uid)
    return run_as


async def sample_memory(
    supervisor: Supervisor, gateway: Gateway, store: AgentStore, every: float = MEMORY_EVERY
) -> None:
    """Every `every` seconds, the dynos' memory into the store (the API's memory charts)."""
    while True:
        await asyncio.sleep(every)
        readings = supervisor.memory()
        if readings:
            try:
                await gateway.call(store.record_memory, readings, MEMORY_KEEP)
            except Exception:
                logger.exception("could not store memory samples")


def dyno_driver(settings: Settings, run_as: RunAs | None) -> Driver:
    """As root: each dyno jailed (the first sandbox that works here, or KAPAL_SANDBOX), as its
    app's uid, in a cgroup; otherwise plain processes of the agent's own user."""
    if run_as is None:
        return PlainDriver(None, settings.dyno_memory)
    trial_uid = run_as.as_uid(APP_UID_BASE)  # no app has it: theirs start above
    jail = detect(settings.sandbox, settings.sandbox_dir / "trial", trial_uid.uid, trial_uid.gid)
    cgroups = Layout.detect(settings.instance)
    if cgroups is None:
        logger.warning("no cgroups: dynos run without memory, process or CPU limits")
        limits = "no cgroups"
    else:
        limits = f"cgroup v{cgroups.version}: {', '.join(sorted(cgroups.bases))}"
    logger.info("dyno sandbox: %s (%s)", jail.name, limits)
    return JailedDriver(
        jail,
        cgroups,
        settings.sandbox_dir,
        run_as,
        shares=(settings.runtimes_dir,),
        memory_mb=settings.dyno_memory,
    )


async def serve(settings: Settings) -> None:
    """Run the agent until SIGTERM/SIGINT, then stop every dyno and return."""
    store = Store.connect(settings.database_url)  # `kapal up` migrated it
    hub = LogHub()
    agent_store = AgentStore(store, lambda: notify(settings.router_wake_socket))
    gateway = Gateway(agent_store)
    run_as = await asyncio.to_thread(dyno_user)  # may create the user (useradd)
    driver = await asyncio.to_thread(dyno_driver, settings, run_as)
    slugs = SlugCache(settings.slugs_dir, settings.dynos_dir, run_as)
    supervisor = Supervisor(
        driver=driver,
        slugs=slugs,
        log=hub,
        gateway=gateway,
        timing=Timing(boot_timeout=settings.dyno_boot_timeout, stop_grace=settings.stop_grace),
        lifetimes=Lifetimes(cycle=settings.dyno_cycle, run_ttl=settings.run_ttl),
    )
    wake = WakeListener(settings.agent_wake_socket)
    reconcile = ReconcileLoop(gateway, supervisor, hub, wake=wake)
    rendezvous = Rendezvous(gateway, supervisor, host=settings.bind, port=settings.rendezvous_port)
    sessions = session_server(
        session_app(hub, agent_store.log_session), settings.bind, settings.logs_port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    wake.start()
    try:
        async with asyncio.TaskGroup() as tasks:
            background = [
                tasks.create_task(LogIngest(hub, settings.log_socket).run(), name="log ingest"),
                tasks.create_task(rendezvous.run(), name="rendezvous"),
                tasks.create_task(reconcile.run(), name="reconcile"),
                tasks.create_task(
                    sample_memory(supervisor, gateway, agent_store), name="memory samples"
                ),
            ]
            tasks.create_task(sessions.serve(), name="log sessions")
            await stop.wait()
            logger.info("stopping all dynos")
            rendezvous.close()
            await reconcile.shutdown()
            hub.close()  # ends live tails, so the sessions server can finish
            sessions.close()
            for task in background:
                task.cancel()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        wake.close()
        driver.close()
        gateway.close()
        store.engine.dispose()
    logger.info("agent stopped")


def main() -> None:
    os.umask(0o077)  # the agent's files (sockets, unpacked slugs' parents) are private
    configure_logging("agent")
    settings = Settings.from_env(os.environ)
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
