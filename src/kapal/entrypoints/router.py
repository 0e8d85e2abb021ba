"""The router process: `python -m kapal.entrypoints.router`.

Composition root: settings from the environment, the store (`RouterStore`, plain SQL over the
DB-API: no router process imports SQLAlchemy), wake-up hints, the log sender, signals. The router
itself (kapal.router) knows none of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

import uvloop

from kapal.domain.eco import quota_seconds
from kapal.entrypoints.logging_setup import configure as configure_logging
from kapal.entrypoints.router_store import RequestMetricsRecorder, RouterStore
from kapal.entrypoints.router_workers import in_child, supervise, worker_wake_socket
from kapal.logs.sender import LogSender
from kapal.router import Router, RouterConfig
from kapal.router.activity import FLUSH_EVERY, Activity, ActivitySink
from kapal.router.localcerts import AppCertificates, local_certificate
from kapal.router.metrics import MetricsFlusher
from kapal.router.tls import SniCertificates
from kapal.settings import Settings
from kapal.store.notify import WakeListener, notify

logger = logging.getLogger(__name__)

REFRESH_INTERVAL = 1.0  # seconds between snapshots when no wake-up hint arrives
SHUTDOWN_GRACE = 10.0  # seconds requests in flight get to finish on SIGTERM
METRICS_INTERVAL = 10.0  # seconds between saves of the request metrics


def record_activity(store: RouterStore, agent_wake: Path) -> ActivitySink:
    """The router's ActivitySink: the apps' last requests into the store, then, when a
    sleeping app was asked for, a wake-up for the agent."""

    def write(last_requests: Mapping[str, float], wake: bool) -> None:
        store.record_requests(last_requests)
        if wake:
            notify(agent_wake)

    return write


def worker_name(settings: Settings) -> str:
    """This process's name in the metrics rows: unique among the router processes (forked
    workers included) of every machine that shares the store."""
    pid = str(os.getpid())
    return f"{settings.router_name}.{pid}" if settings.router_name else pid


def router_config(settings: Settings) -> RouterConfig:
    return RouterConfig(
        apps_domain=settings.apps_domain,
        bind=settings.bind,
        port=settings.router_port,
        tls_port=settings.router_tls_port,
        boot_timeout=settings.router_boot_timeout,
        request_timeout=settings.router_request_timeout,
        idle_timeout=settings.router_idle_timeout,
    )


async def serve(
    settings: Settings, wake_socket: Path | None = None, parent: int | None = None
) -> None:
    """Run the router until SIGTERM or SIGINT, then shut down gracefully. A worker gets its
    own wake-up socket and the pipe whose end-of-file says its parent is gone."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if parent is not None:

        def orphaned() -> None:
            loop.remove_reader(parent)
            stop.set()

        loop.add_reader(parent, orphaned)
    # main() migrated the store; SQLAlchemy and Alembic stay out of the router's memory.
    store = RouterStore(settings.database_url, eco_quota=quota_seconds(settings.eco_quota_hours))
    sender = LogSender(settings.log_socket, loop)
    wake = WakeListener(wake_socket or settings.router_wake_socket)
    chain, key = local_certificate(settings.tls_dir, settings.apps_domain)
    local = AppCertificates(settings.tls_dir, settings.apps_domain)
    tls = SniCertificates(chain, key, store.certificate, local)
    # Batches often enough that a busy app is never seen idle for a sleep period.
    activity = Activity(
        record_activity(store, settings.agent_wake_socket),
        every=min(FLUSH_EVERY, settings.eco_sleep_after / 4),
    )
    router = Router(router_config(settings), store.route_table, sender, tls, activity)
    metrics = MetricsFlusher(
        router.metrics, RequestMetricsRecorder(store.db, worker_name(settings))
    )
    try:
        wake.start()
        await router.start()
        async with asyncio.TaskGroup() as group:
            upkeep = group.create_task(router.run(wake, REFRESH_INTERVAL), name="router-upkeep")
            saving = group.create_task(metrics.run(METRICS_INTERVAL), name="router-metrics")
            recording = group.create_task(activity.run(), name="router-activity")
            await stop.wait()
            logger.info("router stopping")
            await router.close(SHUTDOWN_GRACE)
            upkeep.cancel()
            saving.cancel()
            recording.cancel()
        await metrics.flush()  # the requests of the last seconds
        await activity.flush()
    finally:
        wake.close()
        sender.close()
        store.close()


def main() -> None:
    os.umask(0o077)  # whatever the router creates is private, also when not started by `kapal up`
    configure_logging("router")
    settings = Settings.from_env(os.environ)
    in_child(lambda: prepare(settings))
    if settings.router_workers > 1:
        sys.exit(serve_workers(settings))
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(settings))


def prepare(settings: Settings) -> None:
    """The store's schema and the local certificate, once (rather than raced by every worker),
    run in a short-lived child: Alembic, SQLAlchemy with the models and the x509 builder
    (they would double a router's memory) then weigh on no router process."""
    from kapal.store.db import Store  # only in that child

    Store.open(settings.database_url).engine.dispose()
    local_certificate(settings.tls_dir, settings.apps_domain)


def serve_workers(settings: Settings) -> int:
    """Fork `router_workers` routers sharing the port and supervise them."""

    def run(index: int, parent: int) -> None:
        wake = worker_wake_socket(settings.run_dir, index)
        uvloop.run(serve(settings, wake, parent))

    return supervise(settings.router_workers, settings.router_wake_socket, run, SHUTDOWN_GRACE + 5)


if __name__ == "__main__":
    main()
