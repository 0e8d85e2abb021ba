"""Failed requests during deploys: a steady load on an app while it is deployed, reconfigured
and restarted, counting every request that fails (not 2xx with the right body, or an error).

Starts its own Kapal (`kapal up` on free ports, temporary data directory), pushes
tests/apps/zero-downtime (two web dynos; not ready for its first half second, with an app.json
startup check), and keeps six clients on it (GET and POST with a body, and GETs that take two
seconds, keep-alive and a new connection per request; see load.py) through 5 `git push`
deploys, 5 `config:set` and 5 `ps:restart`, each waited for until every web dyno is new, then
a scale-down by one (none with `--web 1`). Prints the requests sent and failed after each step
and in all; the target is 0 failed. Exits 1 if any failed.

Run: .venv/bin/python bench/zero_downtime.py [--rounds 5] [--web 2]   (`make bench` runs it.)
"""

from __future__ import annotations

import argparse
import shlex
import sqlite3
import sys
import time
from collections.abc import Callable

from kapal_up import BenchError, Kapal, User, running_kapal, signed_up_user, stop_on_sigterm
from load import MIX, Load

APP = "steady"
WEB = 2  # the sample's app.json formation; --web changes it after the first deploy
STEP_TIMEOUT = 180.0
CLIENTS = (*MIX, ("GET", "/slow", True), ("GET", "/slow", False))  # /slow takes two seconds


def web_pids(kapal: Kapal, web: int) -> set[int]:
    """The pids of the app's web dynos once exactly `web` of them are up; empty before."""
    database = kapal.data_dir / "state" / "kapal.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute(
            "SELECT d.state, d.pid FROM dynos d JOIN apps a ON a.id = d.app_id"
            " WHERE a.name = ? AND d.type = 'web'",
            (APP,),
        ).fetchall()
    if len(rows) != web or any(state != "up" for state, _ in rows):
        return set()
    return {pid for _, pid in rows}


def replaced(kapal: Kapal, before: set[int], web: int = WEB) -> set[int]:
    """Until every web dyno is a new one, up; their pids."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not ((now := web_pids(kapal, web)) and not now & before):
        if time.monotonic() > deadline:
            raise BenchError(f"the web dynos were not replaced within {STEP_TIMEOUT:g} s")
        time.sleep(0.1)
    return now


def run(kapal: Kapal, user: User, rounds: int, web: int) -> Load:
    repo = user.checkout("zero-downtime", APP)
    user.cli("create", APP, cwd=repo)
    user.git("push", "-q", "kapal", "main", cwd=repo)
    pids = replaced(kapal, set())
    if web != WEB:
        user.cli("ps:scale", f"web={web}", cwd=repo)
        while len(pids := web_pids(kapal, web)) != web:
            time.sleep(0.1)
    port = kapal.ports["router"]

    def deploy(n: int) -> None:
        (repo / "version.txt").write_text(f"deploy {n}\n")
        user.git("commit", "-q", "-am", f"deploy {n}", cwd=repo)
        user.git("push", "-q", "kapal", "main", cwd=repo)

    steps: list[tuple[str, Callable[[int], object]]] = [
        ("git push", deploy),
        ("config:set", lambda n: user.cli("config:set", f"GREETING=hello {n}", cwd=repo)),
        ("ps:restart", lambda _: user.cli("ps:restart", cwd=repo)),
    ]
    with Load(port, f"{APP}.localhost:{port}", clients=CLIENTS) as load:
        for title, step in steps:
            for n in range(1, rounds + 1):
                started = time.monotonic()
                step(n)
                pids = replaced(kapal, pids, web)
                took = time.monotonic() - started
                print(f"{title} {n}: new dynos up after {took:.1f} s; {load.summary()}")
        if web > 1:
            user.cli("ps:scale", f"web={web - 1}", cwd=repo)
            time.sleep(3)  # the last web dyno is drained and stopped meanwhile
            print(f"ps:scale web={web - 1}: {load.summary()}")
    return load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="of each step (default 5)")
    parser.add_argument("--web", type=int, default=WEB, help=f"web dynos (default {WEB})")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    print(f"command: {shlex.join(sys.orig_argv)}", flush=True)
    try:
        with running_kapal() as kapal:
            user = signed_up_user(kapal)
            load = run(kapal, user, args.rounds, args.web)
    except BenchError as exc:
        print(f"bench stopped: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench interrupted", file=sys.stderr)
        return 130
    rounds = args.rounds
    print(
        f"\nzero downtime ({args.web} web dynos; {rounds} deploys, {rounds} config changes, "
        f"{rounds} restarts{', a scale-down' if args.web > 1 else ''}; "
        f"{len(load.clients)} clients): "
        f"{load.sent} requests sent, {load.failed} failed (target: 0); longest time without an "
        "answer "
        f"{load.longest_gap():.2f} s"
    )
    for failure in load.failures[:20]:
        print(f"  {failure}")
    return 1 if load.failed else 0


if __name__ == "__main__":
    sys.exit(main())
