"""The dashboard served by a real uvicorn on 127.0.0.1 (port 0), a fresh store per test, and
browsers: httpx clients with their own cookie jars.

One server per module; each test swaps in its own Context (its own SQLite file), so tests
share nothing but the listening socket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from kapal.api import errors
from kapal.dashboard.routes import router
from kapal.services.context import Context
from kapal.settings import Settings


class Served:
    def __init__(self, app: FastAPI, url: str) -> None:
        self.app = app
        self.url = url


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    app = FastAPI()
    errors.install(app)
    app.include_router(router)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws="none", lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Served(app, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=30)
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def ctx(tmp_path: Path, served: Served) -> Iterator[Context]:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/k.db")
    context = Context.create(settings)
    served.app.state.ctx = context
    yield context
    context.close()


@pytest.fixture
def browser(served: Served, ctx: Context) -> Iterator[Callable[[], httpx.Client]]:
    """New browsers (each its own cookie jar) that do not follow redirects."""
    clients: list[httpx.Client] = []

    def make() -> httpx.Client:
        client = httpx.Client(base_url=served.url, follow_redirects=False, timeout=60)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
