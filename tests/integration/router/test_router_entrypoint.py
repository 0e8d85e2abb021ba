"""The router process as `kapal up` starts it: settings from the environment, routes from the
store, log lines to the log socket, wake-up hints, SIGTERM."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import free_port

from kapal.domain.logline import LogLine
from kapal.entrypoints.router_store import RouterStore
from kapal.router import AppRoute, UpDyno
from kapal.settings import Settings
from kapal.store.db import Store
from kapal.store.models import App, Dyno, Formation, Release, RouterMetric, Slug, User
from kapal.store.notify import notify

pytestmark = pytest.mark.timeout(120)

ROUTER = "kapal.entrypoints.router"


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

    router_store = RouterStore(store.url)
    table = router_store.route_table()
    router_store.close()
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
        "KAPAL_ROUTER_TLS_PORT": "0",
        "KAPAL_APPS_DOMAIN": "apps.test",
        "KAPAL_ROUTER_NAME": "edge",
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
        requests = 2
        while True:
            assert get(port, "demo.apps.test").status == 503
            message = LogLine.decode(logs.recv(65536)).message
            if "code=H80" in message:
                break
            requests += 1
            assert time.monotonic() < deadline, "maintenance never reached the router"
            time.sleep(0.05)
        assert message.startswith('at=info code=H80 desc="Maintenance mode" method=GET')

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.communicate()[0].decode()
        # Saved at the latest on the way out.
        with store.session() as session:
            rows = session.scalars(select(RouterMetric)).all()
            assert rows and all(r.app_id == app_id for r in rows)
            assert all(r.worker.startswith("edge.") for r in rows)  # edge.<pid> per worker
            assert sum(r.requests for r in rows) == sum(r.status_5xx for r in rows) == requests
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        logs.close()
        store.engine.dispose()


# Several workers (KAPAL_ROUTER_WORKERS)


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def dyno() -> Iterator[int]:
    """A web dyno's stand-in on a free port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def start_workers(
    data_dir: Path, dyno: int, count: int = 2, argv: Sequence[str] = ("-m", ROUTER)
) -> tuple[subprocess.Popen[bytes], int, list[int]]:
    """A router process (`python ARGV...`) with `count` workers routing demo.apps.test to
    `dyno`, once every worker is listening: the process, its port and the workers' pids (with
    one worker, the process itself serves)."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAPAL_DATA_DIR": str(data_dir),
        "KAPAL_ROUTER_PORT": str(port),
        "KAPAL_ROUTER_TLS_PORT": str(free_port()),
        "KAPAL_APPS_DOMAIN": "apps.test",
        "KAPAL_ROUTER_WORKERS": str(count),
    }
    store = Store.open(Settings.from_env(env).database_url)
    app_id = add_app(store, "demo")
    add_release(store, app_id, 1, "succeeded", slug=True)
    add_web(store, app_id, 1, ("web.1", "up", dyno))
    store.engine.dispose()
    process = subprocess.Popen(
        [sys.executable, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while True:
        workers = children(process.pid) if count > 1 else [process.pid]
        if len(workers) == count and all(listening(pid, port) for pid in workers):
            return process, port, workers
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(process.communicate()[0].decode())
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def tcp_sockets(pid: int, port: int, state: str) -> set[str]:
    """Inodes of `pid`'s TCP sockets on local `port` in `state` (0A listen, 01 established)."""
    owned = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                owned.add(target[8:-1])
    found = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            found.add(fields[9])
    return owned & found


def listening(pid: int, port: int) -> bool:
    return bool(tcp_sockets(pid, port, "0A"))


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def test_two_workers_both_serve_and_sigterm_ends_both(data_dir: Path, dyno: int) -> None:
    process, port, workers = start_workers(data_dir, dyno)
    clients = []
    try:
        # The kernel spreads connections over the workers' sockets by their addresses: with
        # 40 of them, both workers get some (all on one: a chance of 2 in 2**40).
        for _ in range(40):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/", headers={"Host": "demo.apps.test"})
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"hello")
            clients.append(conn)  # kept open: each stays with the worker that accepted it
        served = {pid: len(tcp_sockets(pid, port, "01")) for pid in workers}
        assert all(served.values()), served
        assert sum(served.values()) == 40

        for conn in clients:
            conn.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.communicate()[0].decode()
        deadline = time.monotonic() + 10
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in workers if alive(pid)] == []
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        for conn in clients:
            conn.close()
        stop(process)


def test_workers_stop_when_their_parent_is_killed(data_dir: Path, dyno: int) -> None:
    process, port, workers = start_workers(data_dir, dyno)
    try:
        assert get(port, "demo.apps.test").status == 200
        process.kill()  # no SIGTERM to pass on: the workers must notice by themselves
        process.wait()
        deadline = time.monotonic() + 20
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in workers if alive(pid)] == []
    finally:
        stop(process)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_change_in_the_store_reaches_every_worker(data_dir: Path, dyno: int) -> None:
    process, port, _ = start_workers(data_dir, dyno)
    try:
        settings = Settings.from_env({"KAPAL_DATA_DIR": str(data_dir)})
        # The parent relays hints from the router's wake socket to each worker's own.
        assert (settings.run_dir / "router.wake.0").exists()
        assert (settings.run_dir / "router.wake.1").exists()
        store = Store.open(settings.database_url)
        with store.session() as session:
            session.scalars(select(App)).one().maintenance = True
        store.engine.dispose()
        # The workers re-read the store every second anyway; a hint makes it at once.
        notify(settings.router_wake_socket)
        # Fresh connections land on either worker: each must have the new table.
        deadline = time.monotonic() + 15
        while True:
            statuses = [get(port, "demo.apps.test").status for _ in range(20)]
            if statuses == [503] * 20:
                break
            assert time.monotonic() < deadline, statuses
            time.sleep(0.05)
    finally:
        stop(process)


# Memory (issue 5: 30 MB per router process)

# Runs the router with an audit hook that reports, once per process, each heavy library
# imported (the audit hook is inherited by forked children).
IMPORT_WATCH = f"""
import os, sys
seen = set()
HEAVY = ("sqlalchemy", "alembic", "cryptography")
def report(event, args):
    if event == "import" and args[0] in HEAVY and args[0] not in seen:
        seen.add(args[0])
        os.write(1, f"heavy import: {{os.getpid()}} {{args[0]}}\\n".encode())
sys.addaudithook(report)
from {ROUTER} import main
main()
"""


@pytest.mark.parametrize("count", [1, 2])
def test_no_router_process_loads_sqlalchemy_only_its_migrating_child(
    data_dir: Path, dyno: int, count: int
) -> None:
    process, port, workers = start_workers(data_dir, dyno, count, ("-c", IMPORT_WATCH))
    try:
        for _ in range(4):  # a route, a log line, a last request, metrics
            assert get(port, "demo.apps.test").status == 200
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
        assert process.returncode == 0, output
    finally:
        stop(process)
    loaded = [line.split()[2:] for line in output.splitlines() if line.startswith("heavy import")]
    # The migrations (and the local certificate) were made in a short-lived child: they were
    # there, and nothing else loaded them.
    assert {name for _, name in loaded} >= {"sqlalchemy", "alembic"}, output
    assert {int(pid) for pid, _ in loaded}.isdisjoint({process.pid, *workers}), output
    store = Store.connect(Settings.from_env({"KAPAL_DATA_DIR": str(data_dir)}).database_url)
    with store.session() as session:
        rows = session.scalars(select(RouterMetric)).all()
    store.engine.dispose()
    assert sum(r.requests for r in rows) == 4
