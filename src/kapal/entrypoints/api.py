"""Composition root of the API process: Platform API, dashboard and git, over HTTP and, for
the official Heroku CLI (whose git remote is always https://), over HTTPS on a second port
with the platform's certificate from Kapal's local CA."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from kapal.api.app import create_api
from kapal.dashboard.routes import router as dashboard_router
from kapal.entrypoints.logging_setup import configure as configure_logging
from kapal.git.http import router as git_router
from kapal.router.localcerts import platform_certificate
from kapal.services.addons import recover_addons
from kapal.services.context import Context
from kapal.services.pg_credentials import finish_rotations
from kapal.services.pg_quota import StorageQuotaChecker
from kapal.services.pgbackup_schedules import BackupScheduler
from kapal.services.pgbackups import recover_backups
from kapal.settings import Settings


def build(settings: Settings) -> FastAPI:
    ctx = Context.create(settings)
    recover_addons(ctx)  # finish what a crash left half-provisioned (one API process)
    recover_backups(ctx)  # fail the captures the last stop cut short
    finish_rotations(ctx)  # roll forward pg:credentials:rotate a crash interrupted
    return create_api(ctx, extra_routers=(git_router, dashboard_router))


def open_build_dirs(settings: Settings) -> None:
    """As root, builds run as an unprivileged user (kapal.build.python): let it through to its
    build directory (builds/tmp/<id>, see kapal.services.builds) and its app's cache. 0711:
    traversable, not listable; the logs and sources in builds/ stay 0600."""
    builds = settings.builds_dir
    for path in (settings.data_dir, builds, builds / "tmp", settings.cache_dir):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o711)


def main() -> None:
    os.umask(0o077)  # what the API writes (logs, sources, repos) is private to it
    configure_logging("api")
    settings = Settings.from_env(os.environ)
    if os.geteuid() == 0:
        open_build_dirs(settings)
    app = build(settings)
    scheduler = BackupScheduler(app.state.ctx)  # daily pg:backups, in this process
    scheduler.start()
    quota = StorageQuotaChecker(app.state.ctx)  # Postgres storage quotas, every minute
    quota.start()
    try:
        asyncio.run(serve(app, settings, platform_certificate(settings.tls_dir)))
    finally:
        quota.stop()
        scheduler.stop()


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve`, which stops both ports together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: FastAPI, settings: Settings, certificate: Path) -> None:
    """The same app on the HTTP port and on the HTTPS one, until SIGTERM or SIGINT."""

    def server(port: int, tls: Path | None = None) -> uvicorn.Server:
        config = uvicorn.Config(
            app,
            host=settings.bind,
            port=port,
            ssl_certfile=tls,  # the key, then the chain
            lifespan="auto" if tls is None else "off",  # the app starts once
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        return _Server(config)

    servers = [server(settings.api_port), server(settings.api_tls_port, certificate)]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    await asyncio.gather(*(server.serve() for server in servers))


if __name__ == "__main__":
    main()
