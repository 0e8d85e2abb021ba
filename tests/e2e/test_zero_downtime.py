"""Deploys, config changes, restarts and scaling down fail no request: a new web dyno gets
traffic only once it is up (listening, and its app.json startup check passed), and an old one
is drained (no new requests, those in flight finish) before it is stopped.

tests/apps/zero-downtime answers 503 for its first half second, so routing a dyno before its
startup check passed would show up here as failures; it keeps keep-alive connections
(gunicorn's gthread worker), echoes POST bodies and has a slow path, so that requests are
in flight when old dynos are stopped.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import pytest
from bench.load import MIX, Load

from tests.e2e.kapal_server import KAPAL, KapalServer, User, new_user

pytestmark = pytest.mark.e2e

APP = "steady-deploys"
WEB = 2  # from the sample's app.json formation
ROUNDS = 5
# Requests that take two seconds are in flight at most stops: the old dyno must finish them.
CLIENTS = (*MIX, ("GET", "/slow", True), ("GET", "/slow", False))
T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 120) -> T:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return result


class Dynos:
    """The app's web dyno rows in the store, as the router sees them."""

    def __init__(self, server: KapalServer) -> None:
        self.db = server.root / "data" / "state" / "kapal.db"

    def pids(self) -> set[int]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute(
                "SELECT d.state, d.pid FROM dynos d JOIN apps a ON a.id = d.app_id"
                " WHERE a.name = ? AND d.type = 'web'",
                (APP,),
            ).fetchall()
        if len(rows) != WEB or any(state != "up" for state, _ in rows):
            return set()
        return {pid for _, pid in rows}

    def replaced(self, before: set[int]) -> set[int]:
        """Until every web dyno is a new one, up; their pids."""
        return wait_for(
            lambda: (now := self.pids()) and not now & before and now, "new web dynos up"
        )


@contextlib.contextmanager
def tailing(user: User, log: Path) -> Iterator[None]:
    """`kapal logs --tail` into `log` (more than the 1500 lines the log keeps)."""
    with log.open("w") as out:
        tail = subprocess.Popen([KAPAL, "logs", "--tail", "-a", APP], stdout=out, env=user.env)
        try:
            yield
        finally:
            tail.terminate()
            tail.wait(30)


def platform_lines(log: Path) -> str:
    """What the dynos and the router said, but successful requests: for a failure message."""
    return "".join(
        line
        for line in log.read_text(errors="replace").splitlines(keepends=True)
        if not (" status=200 " in line or '" 200 ' in line)
    )[-20000:]


def drained(log: Path) -> int:
    """Requests a dyno was still answering when it got SIGTERM (sent to it before it left the
    route table, a second earlier, and answered after): they show the drain at work."""
    sigterms: list[tuple[float, str]] = []
    requests: list[tuple[float, float, str]] = []
    for line in log.read_text(errors="replace").splitlines():
        if "Stopping all processes with SIGTERM" in line:
            sigterms.append((_stamp(line), line.split("[", 1)[1].split("]", 1)[0]))
        elif found := re.search(r"dyno=(\S+) connect=\d+ms service=(\d+)ms status=2", line):
            end = _stamp(line)
            requests.append((end - int(found.group(2)) / 1000, end, found.group(1)))
    return sum(
        1
        for at, dyno in sigterms
        for start, end, by in requests
        if by == dyno and start < at - 1.0 and end > at
    )


def _stamp(line: str) -> float:
    return datetime.fromisoformat(line[:32]).timestamp()


def deploy(user: User, repo: Path, round_: int) -> None:
    (repo / "version.txt").write_text(f"deploy {round_}\n")
    user.git("commit", "-q", "-am", f"deploy {round_}", cwd=repo)
    user.git("push", "-q", "kapal", "main", cwd=repo)


def test_deploys_config_changes_restarts_and_scaling_fail_no_request(
    kapal_server: KapalServer,
) -> None:
    user = new_user(kapal_server, "steady")
    user.kapal("signup", "--email", "steady@example.com", input="zero downtime\n")
    repo = user.checkout("zero-downtime", APP)
    user.kapal("create", APP, cwd=repo)
    user.git("push", "-q", "kapal", "main", cwd=repo)
    dynos = Dynos(kapal_server)
    pids = wait_for(dynos.pids, "the first web dynos up")
    port = kapal_server.ports["router"]
    steps: list[str] = []
    log = user.home / "tail.log"

    with tailing(user, log), Load(port, f"{APP}.localhost:{port}", clients=CLIENTS) as load:
        for round_ in range(1, ROUNDS + 1):
            deploy(user, repo, round_)
            pids = dynos.replaced(pids)
            steps.append(f"deploy {round_}: {load.summary()}")
        assert user.get(APP, "/version").text == f"deploy {ROUNDS}"
        for round_ in range(1, ROUNDS + 1):
            user.kapal("config:set", f"GREETING=hello {round_}", cwd=repo)
            pids = dynos.replaced(pids)
            steps.append(f"config:set {round_}: {load.summary()}")
        assert user.get(APP, "/greeting").text == f"hello {ROUNDS}"
        for round_ in range(1, ROUNDS + 1):
            user.kapal("ps:restart", cwd=repo)
            pids = dynos.replaced(pids)
            steps.append(f"ps:restart {round_}: {load.summary()}")
        user.kapal("ps:scale", "web=1", cwd=repo)
        wait_for(lambda: "web.2" not in user.kapal("ps", cwd=repo).stdout, "web.2 gone")
        load.wait_for_answers(50)
        steps.append(f"ps:scale web=1: {load.summary()}")

    print(f"\nzero downtime: {load.summary()}; drained at SIGTERM: {drained(log)}")
    print("\n".join(steps))
    assert load.sent > 1000
    lines = platform_lines(log)
    assert load.failures == [], f"{load.report()}\n" + "\n".join(steps) + f"\n{lines}"
    assert 'Startup check "ready" passed' in lines, lines
