"""Composition root of the API process: Platform API, dashboard and git over HTTP."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from kapal.api.app import create_api
from kapal.dashboard.routes import router as dashboard_router
from kapal.entrypoints.logging_setup import configure as configure_logging
from kapal.git.http import router as git_router
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
        uvicorn.run(
            app,
            host=settings.bind,
            port=settings.api_port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        quota.stop()
        scheduler.stop()


if __name__ == "__main__":
    main()
