"""Composition root of the agent process: dynos (reconcile loop, rendezvous) and the log hub.

`AgentStore` (kapal.entrypoints.agent_store) is the runtime's view of the database (runtime and
store may not import each other); everything here only wires parts together.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import time
from datetime import timedelta

import uvloop

from kapal.domain.eco import quota_seconds
from kapal.domain.uids import APP_UID_BASE
from kapal.entrypoints.agent_store import AgentStore
from kapal.entrypoints.logging_setup import configure as configure_logging
from kapal.entrypoints.router_workers import in_child
from kapal.logs.archive import LogArchive
from kapal.logs.drains import DrainSet
from kapal.logs.hub import LogHub
from kapal.logs.ingest import LogIngest
from kapal.logs.sessions import session_app, session_server
from kapal.router.localcerts import PLATFORM, platform_certificate
from kapal.runtime.driver import Driver, PlainDriver
from kapal.runtime.dyno import Timing
from kapal.runtime.gateway import Gateway
from kapal.runtime.jailed import JailedDriver
from kapal.runtime.lifetimes import Lifetimes
from kapal.runtime.reconcile import ReconcileLoop
from kapal.runtime.rendezvous import Rendezvous
from kapal.runtime.slugs import SlugCache
from kapal.runtime.supervisor import Supervisor
from kapal.sandbox.cgroups import Layout
from kapal.sandbox.jail import detect
from kapal.settings import Settings
from kapal.store.notify import WakeListener, notify
from kapal.system_users import RunAs, unprivileged

logger = logging.getLogger(__name__)

MEMORY_EVERY = 20.0  # seconds between stored memory samples of each dyno
MEMORY_KEEP = timedelta(hours=24)
ECO_EVERY = 10.0  # seconds between stored eco dyno usage (how late a used-up quota is seen)
DRAINS_EVERY = 2.0  # seconds between reads of the drains table (how late a new drain starts)
PRUNE_EVERY = 60.0  # seconds between removals of log files past retention or size


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


async def account_eco(supervisor: Supervisor, gateway: Gateway, store: AgentStore) -> None:
    """Store the eco dynos' running time since the last call (the accounts' eco dyno hours)."""
    used = supervisor.eco.take(supervisor.clock())
    if not used:
        return
    try:
        await gateway.call(store.add_eco_usage, used)
    except Exception:
        supervisor.eco.give_back(used)
        logger.exception("could not store eco dyno usage; trying again later")


async def account_eco_forever(
    supervisor: Supervisor, gateway: Gateway, store: AgentStore, every: float = ECO_EVERY
) -> None:
    while True:
        await asyncio.sleep(every)
        await account_eco(supervisor, gateway, store)


async def follow_log_targets(
    drains: DrainSet, archive: LogArchive, gateway: Gateway, store: AgentStore
) -> None:
    """Keep the running drains as the store says, and the archive within its bounds (and
    free of deleted apps' lines)."""
    pruned_at = 0.0
    while True:
        read_at = time.time()
        try:
            apps, specs = await gateway.call(store.log_targets)
        except Exception:
            logger.exception("could not read the log drains")
        else:
            drains.update(specs)
            if read_at - pruned_at >= PRUNE_EVERY:
                pruned_at = read_at
                await asyncio.to_thread(archive.prune, apps, read_at)
        await asyncio.sleep(DRAINS_EVERY)


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
    # `kapal up` migrated the store; SQLAlchemy would cost the agent 24 MB (issue 4).
    agent_store = AgentStore(
        settings.database_url,
        lambda: notify(settings.router_wake_socket),
        eco_quota=quota_seconds(settings.eco_quota_hours),
    )
    archive = LogArchive(
        settings.logs_dir,
        retention=settings.log_retention_days * 86400,
        max_bytes=settings.log_max_bytes,
    )
    hub = LogHub(archive=archive)
    await hub.load()
    drains = DrainSet(hub.append, ca_file=settings.drain_ca_file)
    hub.add_listener(drains.offer)
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
        eco_sleep_after=settings.eco_sleep_after,
    )
    wake = WakeListener(settings.agent_wake_socket)
    reconcile = ReconcileLoop(gateway, supervisor, hub, wake=wake)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # for the Heroku CLI's `run`
    tls.load_cert_chain(settings.tls_dir / PLATFORM)
    rendezvous = Rendezvous(
        gateway, supervisor, host=settings.bind, port=settings.rendezvous_port, ssl_context=tls
    )
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
                tasks.create_task(
                    account_eco_forever(supervisor, gateway, agent_store), name="eco usage"
                ),
            ]
            following = tasks.create_task(
                follow_log_targets(drains, archive, gateway, agent_store), name="log drains"
            )
            tasks.create_task(sessions.serve(), name="log sessions")
            await stop.wait()
            logger.info("stopping all dynos")
            rendezvous.close()
            await reconcile.shutdown()
            await account_eco(supervisor, gateway, agent_store)  # up to the dynos' ends
            following.cancel()
            await drains.close()  # the dynos' last lines, within a few seconds
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
        agent_store.close()
    logger.info("agent stopped")


def main() -> None:
    os.umask(0o077)  # the agent's files (sockets, unpacked slugs' parents) are private
    configure_logging("agent")
    settings = Settings.from_env(os.environ)
    # `kapal up` made it; a lone agent makes it in a child, which alone loads the x509 builder.
    in_child(lambda: platform_certificate(settings.tls_dir))
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
