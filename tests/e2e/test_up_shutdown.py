"""`kapal up` stops its processes even when whoever read its output has gone away (a closed
terminal or pipe): the shutdown messages must not abort the shutdown."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.kapal_server import KAPAL, KapalServer, processes_under

pytestmark = pytest.mark.e2e


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_closed_output_pipe_does_not_stop_the_shutdown() -> None:
    root = Path(tempfile.mkdtemp(prefix="kapal-up-"))
    root.chmod(0o711)
    names = ("api", "api_tls", "router", "router_tls", "logs", "rendezvous", "postgres")
    server = KapalServer(root, {name: free_port() for name in names})
    env = {
        **os.environ,
        **server.env,
        "PYTHONUNBUFFERED": "1",
        # The machine's PostgreSQL: no managed cluster to start for this test.
        "KAPAL_POSTGRES_ADMIN_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    }
    process = subprocess.Popen(
        [KAPAL, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "Kapal is up." in line:
                break
        assert any("Kapal is up." in line for line in seen), "".join(seen)
        # KAPAL_MYSQL_ADMIN_URL names the machine's MariaDB: Kapal runs none of its own.
        assert not any("MariaDB for add-ons" in line for line in seen), "".join(seen)
        started = children(process.pid)
        assert len(started) == 3  # api, agent, router

        process.stdout.close()  # the reader is gone
        process.send_signal(signal.SIGINT)
        process.wait(60)

        deadline = time.monotonic() + 10
        while any(map(alive, started)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in started if alive(pid)] == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


def test_its_own_mariadb_starts_with_kapal_and_stops_with_it() -> None:
    """Without KAPAL_MYSQL_ADMIN_URL `kapal up` runs a MariaDB for kapal-mysql add-ons; Ctrl-C
    leaves no process in the data directory."""
    root = Path(tempfile.mkdtemp(prefix="kapal-up-"))
    root.chmod(0o711)
    names = ("api", "api_tls", "router", "router_tls", "logs", "rendezvous", "postgres")
    server = KapalServer(root, {name: free_port() for name in names})
    mysql_port = free_port()
    env = {
        **os.environ,
        **server.env,
        "PYTHONUNBUFFERED": "1",
        "KAPAL_POSTGRES_ADMIN_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "KAPAL_MYSQL_PORT": str(mysql_port),
    }
    del env["KAPAL_MYSQL_ADMIN_URL"]
    process = subprocess.Popen(
        [KAPAL, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "Kapal is up." in line:
                break
        output = "".join(seen)
        assert f"MariaDB for add-ons is listening on 127.0.0.1:{mysql_port}" in output, output
        assert any("mariadbd" in p for p in processes_under(root)), processes_under(root)

        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output + rest
        assert "MariaDB for add-ons stopped" in rest, rest
        assert processes_under(root) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
