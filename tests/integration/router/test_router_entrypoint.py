"""The router process as `kapal up` starts it: settings from the environment, routes from the
store, log lines to the log socket, wake-up hints, SIGTERM."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import free_port

from kapal.domain.logline import LogLine
from kapal.entrypoints.router import load_route_table
from kapal.router import AppRoute, UpDyno
from kapal.settings import Settings
from kapal.store.db import Store
from kapal.store.models import App, Dyno, Formation, Release, Slug, User
from kapal.store.notify import notify

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short: Unix socket paths in it must stay under ~108 bytes.
    path = Path(tempfile.mkdtemp(prefix="kapal-router-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def add_app(store: Store, name: str, **columns: object) -> str:
    with store.session() as session:
        owner = session.query(User).first()
        if owner is None:
            owner = User(email="owner@example.com", password_hash="x")
            session.add(owner)
            session.flush()
        app = App(name=name, owner_id=owner.id, **columns)
        session.add(app)
        session.flush()
        return app.id


def add_release(store: Store, app_id: str, version: int, status: str, slug: bool) -> None:
    with store.session() as session:
        slug_id = None
        if slug:
            row = Slug(app_id=app_id, checksum="SHA256:0", size=1, process_types={"web": "x"})
            session.add(row)
            session.flush()
            slug_id = row.id
        session.add(
            Release(app_id=app_id, version=version, description="d", slug_id=slug_id, status=status)
        )


def add_web(store: Store, app_id: str, quantity: int, *dynos: tuple[str, str, int | None]) -> None:
    with store.session() as session:
        session.add(Formation(app_id=app_id, type="web", quantity=quantity))
        session.add(Formation(app_id=app_id, type="worker", quantity=1))
        for name, state, port in dynos:
            session.add(
                Dyno(
                    app_id=app_id,
                    name=name,
                    type=name.split(".")[0],
                    command="x",
                    release_version=1,
                    state=state,
                    port=port,
                )
            )


def test_the_snapshot_reads_every_apps_routing_state(data_dir: Path) -> None:
    store = Store.open(f"sqlite:///{data_dir}/kapal.db")
    live = add_app(store, "live")
    add_release(store, live, 1, "succeeded", slug=True)
    add_release(store, live, 2, "failed", slug=True)
    add_web(
        store,
        live,
        3,
        ("web.1", "up", 5001),
        ("web.2", "crashed", None),
        ("web.3", "starting", None),
        ("worker.1", "up", None),
    )
    blank = add_app(store, "blank")
    pending = add_app(store, "pending")
    add_release(store, pending, 1, "pending", slug=True)
    add_release(store, pending, 2, "succeeded", slug=False)  # a config-only release
    resting = add_app(store, "resting", maintenance=True)
    add_release(store, resting, 1, "succeeded", slug=True)
    add_web(store, resting, 0)

    table = load_route_table(store)
    store.engine.dispose()

    assert table.apps["live"] == AppRoute(
        app_id=live,
        name="live",
        maintenance=False,
        deployed=True,
        web_quantity=3,
        up=(UpDyno("web.1", 5001),),
        crashed=1,
        starting=1,
    )
    assert table.apps["blank"] == AppRoute(blank, "blank", deployed=False)
    assert table.apps["pending"] == AppRoute(pending, "pending", deployed=False)
    assert table.apps["resting"] == AppRoute(resting, "resting", maintenance=True, web_quantity=0)


def get(port: int, host: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/", headers={"Host": host})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_the_router_process_serves_logs_refreshes_and_stops(data_dir: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAPAL_DATA_DIR": str(data_dir),
        "KAPAL_ROUTER_PORT": str(port),
        "KAPAL_APPS_DOMAIN": "apps.test",
    }
    settings = Settings.from_env(env)
    store = Store.open(settings.database_url)
    app_id = add_app(store, "demo")
    add_release(store, app_id, 1, "succeeded", slug=True)
    add_web(store, app_id, 0)
    settings.log_socket.parent.mkdir(parents=True, exist_ok=True)
    logs = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    logs.bind(str(settings.log_socket))
    logs.settimeout(10)

    process = subprocess.Popen(
        [sys.executable, "-m", "kapal.entrypoints.router"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.communicate()[0].decode()
                assert time.monotonic() < deadline, "router did not start listening"
                time.sleep(0.05)

        assert get(port, "nope.apps.test").status == 404
        assert get(port, "demo.apps.test:8080").status == 503
        line = LogLine.decode(logs.recv(65536))
        assert (line.app_id, line.source, line.dyno) == (app_id, "kapal", "router")
        assert "code=H14" in line.message

        with store.session() as session:
            session.get_one(App, app_id).maintenance = True
        notify(settings.router_wake_socket)
        deadline = time.monotonic() + 15
        while True:
            assert get(port, "demo.apps.test").status == 503
            if "code=H80" in LogLine.decode(logs.recv(65536)).message:
                break
            assert time.monotonic() < deadline, "maintenance never reached the router"
            time.sleep(0.05)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.communicate()[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        logs.close()
        store.engine.dispose()
