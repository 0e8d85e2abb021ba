"""The router process: `python -m kapal.entrypoints.router`.

Composition root: settings from the environment, the route snapshot read from the store, wake-up
hints, the log sender, signals. The router itself (kapal.router) knows none of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import Counter, defaultdict

import uvloop
from sqlalchemy import select

from kapal.entrypoints.logging_setup import configure as configure_logging
from kapal.logs.sender import LogSender
from kapal.router import AppRoute, Router, RouterConfig, RouteTable, UpDyno
from kapal.settings import Settings
from kapal.store.db import Store
from kapal.store.models import App, Dyno, Formation, Release
from kapal.store.notify import WakeListener

logger = logging.getLogger(__name__)

REFRESH_INTERVAL = 1.0  # seconds between snapshots when no wake-up hint arrives
SHUTDOWN_GRACE = 10.0  # seconds requests in flight get to finish on SIGTERM


def load_route_table(store: Store) -> RouteTable:
    """A full snapshot of every app's routing state."""
    with store.snapshot() as session:
        apps = session.execute(select(App.id, App.name, App.maintenance)).all()
        deployed = set(
            session.scalars(
                select(Release.app_id)
                .where(Release.status == "succeeded", Release.slug_id.is_not(None))
                .distinct()
            )
        )
        web_quantity = {
            app_id: quantity
            for app_id, quantity in session.execute(
                select(Formation.app_id, Formation.quantity).where(Formation.type == "web")
            )
        }
        dynos = session.execute(
            select(Dyno.app_id, Dyno.name, Dyno.state, Dyno.port)
            .where(Dyno.type == "web")
            .order_by(Dyno.name)
        ).all()
    up: defaultdict[str, list[UpDyno]] = defaultdict(list)
    crashed: Counter[str] = Counter()
    starting: Counter[str] = Counter()
    for app_id, name, state, port in dynos:
        if state == "up" and port:
            up[app_id].append(UpDyno(name, port))
        elif state == "crashed":
            crashed[app_id] += 1
        elif state == "starting":
            starting[app_id] += 1
    return RouteTable.of(
        *(
            AppRoute(
                app_id=app_id,
                name=name,
                maintenance=bool(maintenance),
                deployed=app_id in deployed,
                web_quantity=web_quantity.get(app_id, 0),
                up=tuple(up[app_id]),
                crashed=crashed[app_id],
                starting=starting[app_id],
            )
            for app_id, name, maintenance in apps
        )
    )


class StoreRouteSource:
    """The router's RouteSource: reads the snapshot from the state store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self) -> RouteTable:
        return load_route_table(self.store)


def router_config(settings: Settings) -> RouterConfig:
    return RouterConfig(
        apps_domain=settings.apps_domain,
        bind=settings.bind,
        port=settings.router_port,
        boot_timeout=settings.router_boot_timeout,
        request_timeout=settings.router_request_timeout,
    )


async def serve(settings: Settings) -> None:
    """Run the router until SIGTERM or SIGINT, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = Store.open(settings.database_url)
    sender = LogSender(settings.log_socket)
    wake = WakeListener(settings.router_wake_socket)
    router = Router(router_config(settings), StoreRouteSource(store), sender)
    try:
        wake.start()
        await router.start()
        async with asyncio.TaskGroup() as group:
            upkeep = group.create_task(router.run(wake, REFRESH_INTERVAL), name="router-upkeep")
            await stop.wait()
            logger.info("router stopping")
            await router.close(SHUTDOWN_GRACE)
            upkeep.cancel()
    finally:
        wake.close()
        sender.close()
        store.engine.dispose()


def main() -> None:
    os.umask(0o077)  # whatever the router creates is private, also when not started by `kapal up`
    configure_logging("router")
    settings = Settings.from_env(os.environ)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
