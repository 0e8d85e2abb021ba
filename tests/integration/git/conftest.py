"""A real API (uvicorn on a free port) serving the git, sources and builds routes, a user with
an app, and a git client with its own HOME."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.integration.git.pushkit import Api, Pusher, SettleRelease, serve

from kapal.api import builds, errors, sources
from kapal.entrypoints.api import open_build_dirs
from kapal.git import http as git_http
from kapal.services.apps import create_app
from kapal.services.auth import signup
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import App, Release


@pytest.fixture
def api(open_dir: Path) -> Iterator[Api]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    data = open_dir / "data"
    settings = Settings(data_dir=data, api_port=port, database_url=f"sqlite:///{data}/k.db")
    if os.geteuid() == 0:
        open_build_dirs(settings)  # as the API's entry point does
    ctx = Context.create(settings)
    app = FastAPI()
    app.state.ctx = ctx
    errors.install(app)
    for router in (sources.router, builds.router, git_http.router):
        app.include_router(router)
    server, thread = serve(app, sock)
    try:
        yield Api(ctx, port)
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
        ctx.close()


@pytest.fixture
def make_pusher(api: Api, tmp_path: Path) -> Callable[[str], Pusher]:
    def make(name: str) -> Pusher:
        user, token = signup(api.ctx, f"{name}@example.com", "password123")
        app = create_app(api.ctx, user, f"{name}-app")
        home = tmp_path / "home" / name
        home.mkdir(parents=True)
        return Pusher(api, token, app, home)

    return make


@pytest.fixture
def pusher(make_pusher: Callable[[str], Pusher]) -> Pusher:
    return make_pusher("alice")


@pytest.fixture
def settle_release(api: Api) -> Iterator[SettleRelease]:
    """Play the agent's part in the release phase: mark the app's pending release. The
    threads stop with the test, before its data directory goes."""
    done = threading.Event()
    threads: list[threading.Thread] = []

    def settle(app: App, status: str, output: str) -> threading.Thread:
        def run() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not done.is_set():
                with api.ctx.store.session() as s:
                    pending = s.scalar(
                        select(Release).where(Release.app_id == app.id, Release.status == "pending")
                    )
                    if pending is not None:
                        pending.status = status
                        pending.output = output
                        return
                done.wait(0.05)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield settle
    done.set()
    for thread in threads:
        thread.join(10)
