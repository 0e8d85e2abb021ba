"""Eco dynos through `kapal up`, git push and the CLI: an app without requests sleeps (`kapal
ps` shows web and worker idle, and the eco dyno hours left), requests during the wake are all
answered, and a used-up quota is H82.

A Kapal of its own, whose eco dynos sleep after a few seconds: the shared one keeps the
default (30 minutes), so that no other test's app falls asleep."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from kapal.domain.eco import month_of
from kapal.settings import Settings
from kapal.store.notify import notify
from tests.e2e.kapal_server import KapalServer, new_user, processes_under, start_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

APP = "sleepy-eco"
T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 90.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[KapalServer]:
    monkeypatch.setenv("KAPAL_ECO_SLEEP_AFTER", "3")  # `kapal up` inherits it
    started = start_server()
    try:
        yield started
    finally:
        status = started.stop()
        try:
            assert status == 0, "kapal up did not stop cleanly:\n" + "".join(started.output[-50:])
            assert processes_under(started.root) == [], "Ctrl-C left processes running"
        finally:
            shutil.rmtree(started.root, ignore_errors=True)


def test_an_eco_app_sleeps_wakes_and_runs_out_of_hours(server: KapalServer) -> None:
    user = new_user(server, "eco")
    user.kapal("signup", "--email", "eco@example.com", input="eco dynos 1\n")
    repo = user.checkout("flask-hello", APP)
    procfile = repo / "Procfile"
    procfile.write_text(procfile.read_text() + "worker: sleep 600\n")
    user.git("add", "-A", cwd=repo)
    user.git("commit", "-q", "-m", "a worker", cwd=repo)
    user.kapal("create", APP, cwd=repo)
    user.git("push", "kapal", "main", cwd=repo)
    user.kapal("ps:scale", "worker=1", cwd=repo)
    answer = wait_for(lambda: (r := user.get(APP)).status_code == 200 and r.text, "the app")

    def ps() -> str:
        return user.kapal("ps", cwd=repo).stdout

    def ps_showing(*wanted: str) -> str:
        text = ps()
        return text if all(w in text for w in wanted) else ""

    # Usage is stored every few seconds: the seconds the dynos ran show up soon after.
    used = "Eco dyno hours quota remaining this month: 999h"
    text = wait_for(lambda: ps_showing("web.1: idle", "worker.1: idle", used), "idle")
    assert "Eco dyno usage for this app: 0h" in text

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda _: user.get(APP), range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert {r.text for r in responses} == {answer}
    assert "web.1: up" in ps()
    logs = user.kapal("logs", "-n", "200", cwd=repo).stdout
    assert "kapal[web.1]: Idling" in logs and "kapal[worker.1]: Idling" in logs
    assert "kapal[web.1]: Unidling" in logs

    # The account's eco dyno hours used up (as if spent on an app since deleted): H82.
    settings = Settings.from_env(server.env)
    with sqlite3.connect(settings.data_dir / "state" / "kapal.db") as db:
        (owner,) = db.execute("SELECT owner_id FROM apps WHERE name = ?", (APP,)).fetchone()
        db.execute(
            "INSERT INTO eco_usage (user_id, app_id, month, seconds) VALUES (?, ?, ?, ?)",
            (owner, "deleted-app", month_of(time.time()), 1000 * 3600.0),
        )
    notify(settings.agent_wake_socket, settings.router_wake_socket)
    wait_for(lambda: user.get(APP).status_code == 503, "H82")
    logs = user.kapal("logs", "-n", "200", cwd=repo).stdout
    assert 'at=info code=H82 desc="Eco dyno quota exhausted"' in logs
    text = wait_for(lambda: ps_showing("web.1: idle"), "asleep for the month")
    assert "Eco dyno hours quota remaining this month: 0h 0m (0%)" in text
