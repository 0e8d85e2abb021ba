"""Composition root of the API process: Platform API, dashboard and git over HTTP."""

from __future__ import annotations

import logging
import os

import uvicorn
from fastapi import FastAPI

from kapal.api.app import create_api
from kapal.dashboard.routes import router as dashboard_router
from kapal.git.http import router as git_router
from kapal.services.context import Context
from kapal.settings import Settings


def build(settings: Settings) -> FastAPI:
    return create_api(Context.create(settings), extra_routers=(git_router, dashboard_router))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="api: %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(os.environ)
    uvicorn.run(
        build(settings),
        host=settings.bind,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
