"""Fixtures for add-on tests against real PostgreSQL servers.

A throwaway managed cluster plays the external server (`admin_url`, in
tests/integration/conftest.py, shared with the git push tests); KAPAL_TEST_POSTGRES_ADMIN_URL
points the tests at another one. A missing server fails the tests with a message: these tests
never skip.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import uvicorn
from sqlalchemy import select

from kapal.addons.postgres import PostgresProvisioner
from kapal.addons.provider import Provisioner
from kapal.api.app import create_api
from kapal.services.auth import login, signup
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import Addon, User


@pytest.fixture
def provisioner(admin_url: str) -> PostgresProvisioner:
    return PostgresProvisioner(admin_url)


@pytest.fixture
def addon_name(provisioner: Provisioner) -> Iterator[Callable[..., str]]:
    """Unique add-on names (or the one given); whatever they provisioned is removed afterwards
    by `provisioner`, this module's PostgreSQL one or the one a test module defines."""
    made: list[str] = []

    def make(name: str | None = None) -> str:
        made.append(name or f"test-{secrets.token_hex(5)}")
        return made[-1]

    yield make
    for name in made:
        provisioner.deprovision(name)


def exists(admin_url: str, ident: str) -> tuple[bool, bool]:
    """(role exists, database exists)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ident,)).fetchone()
        db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (ident,)).fetchone()
    return role is not None, db is not None


@pytest.fixture
def ctx(tmp_path: Path, admin_url: str) -> Iterator[Context]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path}/state/k.db",
        postgres_admin_url=admin_url,
    )
    context = Context.create(settings)
    yield context
    context.log.close()
    context.store.engine.dispose()


@pytest.fixture
def user(ctx: Context) -> User:
    return signup(ctx, "owner@example.com", "password123")[0]


@pytest.fixture
def token(ctx: Context, user: User) -> str:
    return login(ctx, "owner@example.com", "password123")


@pytest.fixture
def api_url(ctx: Context) -> Iterator[str]:
    """The real Platform API on a port of its own, in a thread of this process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_api(ctx), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the API server stopped while starting"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(30)
    sock.close()


@pytest.fixture
def drop_addons(ctx: Context, admin_url: str) -> Iterator[None]:
    """Deprovision whatever add-ons a test left in the store."""
    yield
    with ctx.store.session() as s:
        names = list(s.scalars(select(Addon.name)))
    for name in names:
        PostgresProvisioner(admin_url).deprovision(name)
