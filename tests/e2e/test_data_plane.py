"""The data plane outlives the control plane: apps keep serving while Kapal's own processes are
killed (SIGKILL) and started again by `kapal up`, and come back whole after a full restart.

These tests kill platform processes, so they run their own Kapal (own data directory and
ports), shared by the tests of this module, which run in order: API killed, agent killed,
whole platform stopped and started again.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bench.load import Load

from kapal.settings import Settings
from tests.e2e.kapal_server import (
    KapalServer,
    User,
    new_user,
    processes_under,
    start_server,
    wait_for,
)

pytestmark = pytest.mark.e2e

APP = "steady"
WEB = 2  # web dynos: a restart must bring back exactly this many
ANSWER = "Hello from Kapal\n"
RECOVERY = 5.0  # seconds: the bound for apps serving again after an agent restart


def load(platform: Platform) -> Load:
    """Clients hitting the app through the router (GET and POST with a body, keep-alive and a
    new connection per request: bench/load.py), each request counted."""
    port = platform.server.ports["router"]
    return Load(port, f"{APP}.localhost:{port}", ANSWER)


@dataclass
class Platform:
    """This module's Kapal (replaced by a new `kapal up` on the same data when restarted)."""

    server: KapalServer
    user: User
    repo: Path

    @property
    def data(self) -> Path:
        return self.server.root / "data"

    def child(self, name: str) -> int:
        """The pid of `kapal up`'s child running kapal.entrypoints.<name>."""
        pid = self.child_or_none(name)
        assert pid is not None, f"kapal up has no {name} child:\n{''.join(self.server.output)}"
        return pid

    def child_or_none(self, name: str) -> int | None:
        assert self.server.process is not None
        pid = self.server.process.pid
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"kapal.entrypoints.{name}".encode() in cmdline and _alive(int(child)):
                return int(child)
        return None

    def dynos(self) -> dict[str, tuple[str, int | None]]:
        """The app's formation rows in the store: name -> (state, pid)."""
        uri = f"file:{self.data / 'state' / 'kapal.db'}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=10) as db:
            rows = db.execute(
                "SELECT d.name, d.state, d.pid FROM dynos d JOIN apps a ON a.id = d.app_id "
                "WHERE a.name = ? AND d.type != 'run'",
                (APP,),
            ).fetchall()
        return {name: (state, pid) for name, state, pid in rows}

    def dyno_sessions(self) -> set[int]:
        """Running dynos, as processes see them: the outermost session leaders whose working
        directory is an unpacked slug (plain dynos) or that sit in one of this Kapal's dyno
        cgroups (jailed dynos: the jail's first process; the command inside leads a session
        of its own too)."""
        root = f"{self.data / 'dynos'}/"
        cgroups = f"/kapal-{Settings(data_dir=self.data.resolve()).instance}/"
        leaders: dict[int, int] = {}  # session leader of ours -> its parent
        ours = set()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                cwd = os.readlink(Path(entry.path, "cwd"))
                groups = Path(entry.path, "cgroup").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            state, parent, session = fields[0], int(fields[1]), int(fields[3])
            if state == "Z" or not (cwd.startswith(root) or cgroups in groups):
                continue
            ours.add(int(entry.name))
            if session == int(entry.name):
                leaders[session] = parent
        return {pid for pid, parent in leaders.items() if parent not in ours}

    def settled(self) -> dict[str, tuple[str, int | None]] | None:
        """The rows, once exactly the formation is up and each row's process is a running
        dyno (none more, none less); None before."""
        rows = self.dynos()
        names = {f"web.{i}" for i in range(1, WEB + 1)}
        pids = {pid for _, pid in rows.values()}
        if set(rows) != names or any(state != "up" for state, _ in rows.values()):
            return None
        return rows if pids == self.dyno_sessions() else None


def _pids(rows: dict[str, tuple[str, int | None]]) -> set[int]:
    return {pid for _, pid in rows.values() if pid is not None}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    server = start_server()
    platform: Platform | None = None
    try:
        user = new_user(server, "ops")
        user.kapal("signup", "--email", "ops@example.com", input="data plane 1\n")
        repo = user.checkout("flask-hello", APP)
        user.kapal("create", APP, cwd=repo)
        user.git("push", "kapal", "main", cwd=repo)
        user.kapal("ps:scale", f"web={WEB}", cwd=repo)
        platform = Platform(server, user, repo)
        wait_for(platform.settled, timeout=60)
        wait_for(lambda: user.get(APP).text == ANSWER)
        yield platform
    finally:
        current = platform.server if platform is not None else server
        status = current.stop()
        try:
            assert status == 0, "kapal up did not stop cleanly:\n" + "".join(current.output[-50:])
            assert processes_under(current.root) == [], "Ctrl-C left processes running"
        finally:
            shutil.rmtree(current.root, ignore_errors=True)


def test_apps_keep_serving_while_the_api_is_killed(platform: Platform) -> None:
    before = platform.settled()
    assert before is not None
    api = platform.child("api")
    with load(platform) as running:
        os.kill(api, signal.SIGKILL)
        killed = time.monotonic()
        restarted = wait_for(lambda: (pid := platform.child_or_none("api")) != api and pid)
        wait_for(lambda: _api_answers(platform.server), timeout=30)
        back = time.monotonic() - killed
        running.wait_for_answers(50)  # and some more with the new API
    print(f"\nAPI killed: a new API ({restarted}) answered after {back:.2f} s; {running.summary()}")
    assert running.failures == [], running.report()
    assert len(running.answered) > 100
    assert platform.settled() == before  # the very same dynos, untouched


def test_apps_serve_again_soon_after_the_agent_is_killed(platform: Platform) -> None:
    before = platform.settled()
    assert before is not None
    agent = platform.child("agent")
    with load(platform) as running:
        os.kill(agent, signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: platform.child_or_none("agent") not in (None, agent), timeout=30)
        agent_back = time.monotonic() - killed
        # Replaced: every row names a new process, and the old ones are gone.
        after = wait_for(
            lambda: (rows := platform.settled()) and not _pids(rows) & _pids(before) and rows,
            timeout=30,
        )
        replaced = time.monotonic() - killed
        running.wait_for_answers(50)
    gap = running.longest_gap()
    print(
        f"\nagent killed: new agent after {agent_back:.2f} s, dynos replaced after "
        f"{replaced:.2f} s, longest time without an answer {gap:.2f} s, {running.summary()}"
    )
    output = "".join(platform.server.output[-60:])
    assert gap < RECOVERY, f"{running.report()}\n{output}"
    assert running.failures == [], f"{running.report()}\n{output}"
    assert not any(_alive(pid) for pid in _pids(before)), "a dyno of the killed agent runs on"
    assert set(after) == {f"web.{i}" for i in range(1, WEB + 1)}
    ps = platform.user.kapal("ps", "-a", APP).stdout
    assert ps.count(": up ") == WEB, ps


def test_a_restarted_platform_brings_every_app_back(platform: Platform) -> None:
    user, repo = platform.user, platform.repo
    user.kapal("addons:create", "heroku-postgresql", cwd=repo)
    user.kapal(
        "pg:psql", "-c", "CREATE TABLE visits (n int); INSERT INTO visits VALUES (42)", cwd=repo
    )
    user.kapal("config:set", "GREETING=still here", cwd=repo)
    wait_for(lambda: user.get(APP, "/greeting").text == "still here")
    releases = user.kapal("releases", cwd=repo).stdout
    config = user.kapal("config", "--json", cwd=repo).stdout
    assert user.kapal("config:get", "DATABASE_URL", cwd=repo).stdout.startswith("postgres")
    history = wait_for(
        lambda: user.kapal("logs", "--grep", "Set GREETING", "-n", "5", cwd=repo).stdout.strip()
    )

    old = platform.server
    assert old.process is not None
    old.process.send_signal(signal.SIGTERM)
    assert old.stop() == 0, "".join(old.output[-50:])
    assert processes_under(old.root) == [], "the stopped platform left processes running"

    platform.server = KapalServer(old.root, old.ports)
    started = time.monotonic()
    platform.server.start()
    wait_for(platform.settled, timeout=60)
    wait_for(lambda: user.get(APP, "/greeting").text == "still here", timeout=30)
    print(f"\nplatform restarted: the app served after {time.monotonic() - started:.2f} s")

    assert user.kapal("releases", cwd=repo).stdout == releases
    assert user.kapal("config", "--json", cwd=repo).stdout == config
    # The log history is kept across the restart, timestamps and all.
    kept = user.kapal("logs", "--grep", "Set GREETING", "-n", "5", cwd=repo).stdout.strip()
    assert kept == history
    assert user.get(APP).text == ANSWER
    psql = user.kapal("pg:psql", "-c", "SELECT n FROM visits", cwd=repo).stdout
    assert "42" in psql, psql
    # The app's own dynos reach the database with the URL they are given.
    query = 'psql "$DATABASE_URL" -tAc "SELECT n + 1 FROM visits"'
    assert "43" in user.kapal("run", query, cwd=repo).stdout


def _api_answers(server: KapalServer) -> bool:
    try:
        return httpx.get(f"{server.api_url}/", timeout=2).status_code < 500
    except httpx.HTTPError:
        return False
