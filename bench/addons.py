"""Add-ons: time to provision each add-on service, and pg:backups capture/restore throughput.

Starts its own Kapal (bench/kapal_up.py) with KAPAL_MYSQL_ADMIN_URL set (default
mysql://root@127.0.0.1:3306, override with the variable), signs up, creates an app, then:

1. provisions kapal-postgresql, kapal-redis and kapal-mysql --provisions times each through
   the Platform API (POST /apps/{app}/addons, timed to its 201 answer; each one destroyed
   after). A service whose first provisioning fails is skipped, with the API's reason.
2. fills a kapal-postgresql database with --size-mb of rows (one server-side INSERT ... SELECT
   over generate_series), then times through the API, --runs times each:
   - capture: POST /apps/{app}/pg-backups until the backup is `succeeded` (polled);
   - restore into an empty database: POST /apps/{app}/pg-restores to a second add-on;
   - restore over itself: the same database, whose copy (r001...) is taken first.
   Throughput = the database's size (pg_database_size when the dump started) / seconds.

Prints the medians (min, max) and the issue's targets beside them; never asserts. Bounded:
no new run starts after --budget seconds; Kapal and everything it started are stopped.

Run: .venv/bin/python bench/addons.py [--provisions 5] [--runs 3] [--size-mb 200]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from deploy import machine
from kapal_up import BenchError, User, running_kapal, signed_up_user, stop_on_sigterm

APP = "addons-bench"
MYSQL_ADMIN_URL = "mysql://root@127.0.0.1:3306"
SERVICES = (("kapal-postgresql", 1.0), ("kapal-redis", 0.3), ("kapal-mysql", 1.0))
ROWS_PER_INSERT = 100_000  # ~18 MB of table and index a statement
LONG = httpx.Timeout(30.0, read=1800.0)  # a restore answers when it is done
MB = 1024 * 1024


@dataclass
class Row:
    what: str
    target: str
    seconds: list[float] = field(default_factory=list)
    megabytes: float = 0.0  # the database's size, for MB/s
    note: str = ""


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> bool:
        return time.monotonic() < self.deadline


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def checked(response: httpx.Response, what: str) -> Any:
    if not response.is_success:
        raise BenchError(f"{what}: {response.status_code} {response.text}")
    return response.json()


def provisioning(http: httpx.Client, service: str, target: float, runs: int, budget: Budget) -> Row:
    row = Row(f"provision {service}", f"< {target:g} s")
    for _ in range(runs):
        if not budget.left():
            row.note = "budget spent"
            break
        seconds, response = timed(
            lambda: http.post(f"/apps/{APP}/addons", json={"plan": service}, timeout=120)
        )
        if response.status_code != 201:
            row.note = f"skipped: {response.status_code} {response.json().get('message', '')}"
            break
        row.seconds.append(seconds)
        checked(
            http.delete(f"/apps/{APP}/addons/{response.json()['name']}", timeout=120), "destroy"
        )
    return row


def fill(url: str, megabytes: int) -> int:
    """Rows of text until the database holds `megabytes`; its size in bytes."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            "CREATE TABLE readings (id bigint PRIMARY KEY, sensor int, taken_at timestamptz, "
            "note text)"
        )
        start = 0
        while True:
            size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
            if size >= megabytes * MB:
                return size
            conn.execute(
                "INSERT INTO readings SELECT g, g %% 977, now() - g * interval '1 second', "
                "md5(g::text) || ' from sensor ' || (g %% 977) || ': ' || md5((g * 31)::text) "
                "FROM generate_series(%s::bigint, %s::bigint) g",
                (start + 1, start + ROWS_PER_INSERT),
            )
            start += ROWS_PER_INSERT


def wait_backup(http: httpx.Client, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 1800
    while True:
        backup: dict[str, Any] = checked(http.get(f"/apps/{APP}/pg-backups/{name}"), "backup")
        if backup["status"] != "running":
            if backup["status"] != "succeeded":
                raise BenchError(f"backup {name} {backup['status']}: {backup['error']}")
            return backup
        if time.monotonic() > deadline:
            raise BenchError(f"backup {name} still running after 30 minutes")
        time.sleep(0.02)


def capture(http: httpx.Client) -> dict[str, Any]:
    started = checked(
        http.post(f"/apps/{APP}/pg-backups", json={"database": "DATABASE"}), "capture"
    )
    return wait_backup(http, started["name"])


def restore(http: httpx.Client, backup: str, database: str) -> float:
    body = {"backup": backup, "database": database}
    seconds, _ = timed(
        lambda: checked(http.post(f"/apps/{APP}/pg-restores", json=body, timeout=LONG), "restore")
    )
    return seconds


def backups(user: User, runs: int, size_mb: int, budget: Budget) -> list[Row]:
    with user.api_client() as http:
        checked(http.post(f"/apps/{APP}/addons", json={"plan": "kapal-postgresql"}), "database")
        url = checked(http.get(f"/apps/{APP}/config-vars"), "config")["DATABASE_URL"]
        print(f"filling DATABASE with {size_mb} MB...", flush=True)
        fill_seconds, size = timed(lambda: fill(url, size_mb))
        print(f"  {size / MB:.0f} MB in {fill_seconds:.1f} s", flush=True)
        megabytes = size / MB
        rows = [
            Row(f"pg:backups capture ({megabytes:.0f} MB)", "", megabytes=megabytes),
            Row("pg:backups restore into a new database", "", megabytes=megabytes),
            Row("pg:backups restore over itself (copy first)", "", megabytes=megabytes),
        ]
        dump: dict[str, Any] = {}
        for _ in range(runs):
            if not budget.left():
                break
            seconds, dump = timed(lambda: capture(http))
            rows[0].seconds.append(seconds)
        if not dump:
            return rows
        rows[0].note = f"dump {dump['size_bytes'] / MB:.0f} MB"
        for _ in range(runs):
            if not budget.left():
                break
            # A new, empty database each time: its copy before the restore is nearly nothing.
            plan = {"plan": "kapal-postgresql", "attachment": {"name": "EMPTY"}}
            empty = checked(http.post(f"/apps/{APP}/addons", json=plan), "new database")
            rows[1].seconds.append(restore(http, dump["name"], empty["name"]))
            checked(http.delete(f"/apps/{APP}/addons/{empty['name']}", timeout=120), "destroy")
        for _ in range(runs):
            if budget.left():
                rows[2].seconds.append(restore(http, dump["name"], "DATABASE"))
        return rows


def table(rows: Sequence[Row]) -> str:
    header = ["", "runs", "median", "min", "max", "MB/s", "target", ""]
    body = []
    for row in rows:
        if row.seconds:
            median = statistics.median(row.seconds)
            cells = [
                f"{median:.2f} s",
                f"{min(row.seconds):.2f} s",
                f"{max(row.seconds):.2f} s",
                f"{row.megabytes / median:.0f}" if row.megabytes else "",
            ]
        else:
            cells = ["-", "-", "-", ""]
        body.append([row.what, str(len(row.seconds)), *cells, row.target, row.note])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for cells in [header, *body]:
        first, *numbers, target, note = cells
        parts = [
            first.ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(numbers, widths[1:6], strict=True)),
        ]
        lines.append("  ".join([*parts, target.ljust(widths[6]), note]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths[:-1]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provisions", type=int, default=5, help="per service (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="captures, restores (default 3)")
    parser.add_argument("--size-mb", type=int, default=200, help="database size (default 200)")
    parser.add_argument(
        "--budget", type=float, default=900.0, help="seconds after which no run starts"
    )
    args = parser.parse_args(argv)
    stop_on_sigterm()
    os.environ.setdefault("KAPAL_MYSQL_ADMIN_URL", MYSQL_ADMIN_URL)  # `kapal up` inherits it
    print(f"command: {shlex.join(sys.orig_argv)}")
    print(machine(), flush=True)
    budget = Budget(args.budget)
    rows: list[Row] = []
    status = 0
    try:
        with running_kapal() as kapal:
            user = signed_up_user(kapal)
            with user.api_client() as http:
                checked(http.post("/apps", json={"name": APP}), "create app")
                for service, target in SERVICES:
                    rows.append(provisioning(http, service, target, args.provisions, budget))
                    print(f"  {rows[-1].what}: {len(rows[-1].seconds)} runs {rows[-1].note}")
            rows += backups(user, args.runs, args.size_mb, budget)
    except (BenchError, psycopg.Error) as exc:
        print(f"bench stopped: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("bench interrupted", file=sys.stderr)
        status = 130
    print()
    print(f"Add-ons: provisioning through the API (median of {args.provisions}), pg:backups")
    print(f"(median of {args.runs}; MB/s = database size / seconds)")
    print(table(rows))
    return status


if __name__ == "__main__":
    sys.exit(main())
