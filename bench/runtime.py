"""Runtime figures: how fast dynos start, and how little memory Kapal adds to each.

Starts its own Kapal (bench/kapal_up.py), deploys tests/apps/flask-hello with two additions
made in the bench's own copy (a `/dyno` page answering $DYNO, and an `idle: sleep` process
type), then measures:

- scale: the formation's web quantity set to 0, then to 10 (the Platform API's PATCH, as
  `kapal ps:scale` sends it), until the API lists all ten `up` and until each of the ten has
  answered through the router; beside the app's own boot time: its web command (with the
  profile scripts, as a dyno runs it) started directly on this machine until it answers.
- one-off: `kapal run echo hi` until `hi` is printed (the CLI's own start included); and the
  same through the API and the rendezvous directly (POST /apps/{app}/dynos, then the attach
  URL), split into its steps.
- memory: for each dyno, the RSS (and PSS) of every process of its process tree (from the
  pid its row records) or of its cgroup, when it has one of its own, that is not the app's
  command or below it: whatever the driver wraps the command in (sandbox, init, shell). The
  agent's RSS with 0, 10 and 50 dynos.

Prints figures and the issue's targets beside them; it never asserts them.

Run: .venv/bin/python bench/runtime.py [--runs 5]   (`make bench` runs it after deploy.py.)
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from deploy import machine
from kapal_up import (
    KAPAL,
    BenchError,
    Kapal,
    User,
    free_port,
    running_kapal,
    signed_up_user,
    stop_on_sigterm,
)

from kapal.runtime.environment import dyno_argv

APP = "runtime-bench"
SCALE = 10
MANY = 50  # dynos for the agent's RSS: SCALE web dynos plus idle ones
POLL = 0.05
WAIT = 120.0  # seconds: the longest any wait of the bench may take
DYNO_PAGE = """

@app.get("/dyno")
def dyno() -> str:
    return os.environ.get("DYNO", "")
"""
IDLE = "idle: sleep 86400"
LEGEND = """
scale: from the PATCH that sets web=10 (after web=0 and no web dyno left) until the API lists
ten web dynos up, and until each of the ten has answered /dyno through the router (one
request after another, each on a new connection). app boot: the web command started directly
(once, or ten copies at once: what ten dynos booting together cost this machine's cores),
until every copy answers /dyno. one-off: until the first output (`hi`) arrives. Memory: RSS counts
shared pages in full, PSS shares them out; "Kapal per dyno" is the sum over the processes of
one dyno that are not the app's command or below it (median, min, max over the dynos)."""


# A plain-text table like report.py's: one row per figure, median, min and max of the runs.


@dataclass(frozen=True)
class Row:
    figure: str
    unit: str
    values: Sequence[float]
    target: str = ""


def _number(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def table(title: str, rows: Sequence[Row]) -> str:
    header = ["figure", "n", "median", "min", "max", "unit", "target"]
    body = []
    for row in rows:
        if row.values:
            numbers = [statistics.median(row.values), min(row.values), max(row.values)]
            cells = [_number(v) for v in numbers]
        else:
            cells = ["-", "-", "-"]
        body.append([row.figure, str(len(row.values)), *cells, row.unit, row.target])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        first, *numbers, unit, target = cells
        aligned = [first.ljust(widths[0])]
        aligned += [c.rjust(w) for c, w in zip(numbers, widths[1:-2], strict=True)]
        return "  ".join([*aligned, unit.ljust(widths[-2]), target]).rstrip()

    lines = [title, render(header), "  ".join("-" * width for width in widths)]
    return "\n".join(lines + [render(cells) for cells in body])


Measure = Callable[[Kapal, User], tuple[list[Row], list[str]]]


def run_bench(title: str, legend: str, measure: Measure) -> int:
    """Print the command and the machine, start Kapal and sign a user up, `measure` (rows and
    notes), then print the machine again, the table, the notes and `legend`; the exit status
    (1: the bench stopped, 130: interrupted), whose figures are printed so far as they go."""
    stop_on_sigterm()
    print(f"command: {shlex.join(sys.orig_argv)}")
    print(machine(), flush=True)
    status = 0
    rows: list[Row] = []
    notes: list[str] = []
    try:
        with running_kapal() as kapal:
            rows, notes = measure(kapal, signed_up_user(kapal))
    except BenchError as exc:
        print(f"bench stopped: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("bench interrupted", file=sys.stderr)
        status = 130
    print(f"{machine()} (after)")
    print()
    print(table(title, rows))
    for note in notes:
        print(f"  {note}")
    print(legend)
    return status


# Processes, from /proc.


@dataclass
class Proc:
    pid: int
    ppid: int
    argv: list[str]
    rss: int  # bytes
    pss: int  # bytes
    cgroup: str


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return None


def _kb_field(text: str | None, name: str) -> int:
    for line in (text or "").splitlines():
        if line.startswith(name):
            return int(line.split()[1]) * 1024
    return 0


def processes() -> dict[int, Proc]:
    """Every running process (zombies and kernel threads left out)."""
    found = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        stat = _read(f"/proc/{name}/stat")
        cmdline = _read(f"/proc/{name}/cmdline")
        if not stat or not cmdline:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        found[int(name)] = Proc(
            int(name),
            int(fields[1]),
            cmdline.rstrip("\0").split("\0"),
            _kb_field(_read(f"/proc/{name}/status"), "VmRSS:"),
            _kb_field(_read(f"/proc/{name}/smaps_rollup"), "Pss:"),
            _read(f"/proc/{name}/cgroup") or "",
        )
    return found


def descendants(table: dict[int, Proc], root: int) -> list[int]:
    """root and every process below it, breadth first."""
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    order, queue = [], [root] if root in table else []
    while queue:
        pid = queue.pop(0)
        order.append(pid)
        queue += sorted(children.get(pid, []))
    return order


def runs_command(proc: Proc, word: str) -> bool:
    """Whether the process runs the program `word` (directly, or as an interpreter's script)."""
    return any(Path(arg).name == word for arg in proc.argv[:2])


@dataclass
class DynoMemory:
    wrappers: list[Proc] = field(default_factory=list)
    app: list[Proc] = field(default_factory=list)

    @property
    def rss(self) -> int:
        return sum(p.rss for p in self.wrappers)

    @property
    def pss(self) -> int:
        return sum(p.pss for p in self.wrappers)

    def layout(self) -> str:
        shown = [f"{Path(p.argv[0]).name} ({p.rss / 2**20:.1f} MB)" for p in self.wrappers]
        app = f"app: {len(self.app)} processes, {sum(p.rss for p in self.app) / 2**20:.1f} MB"
        return " > ".join([*shown, app]) if shown else f"no wrapper; {app}"


def dyno_memory(table: dict[int, Proc], root: int, word: str, agent_cgroup: str) -> DynoMemory:
    """Split the processes of the dyno whose first process is `root` into the app's (the
    first process running `word`, and everything below it) and the rest."""
    members = descendants(table, root)
    own = table[root].cgroup if root in table else agent_cgroup
    if own != agent_cgroup:  # a cgroup of its own: daemonised processes count too
        members += [p.pid for p in table.values() if p.cgroup == own and p.pid not in members]
    app_root = next((pid for pid in members if runs_command(table[pid], word)), None)
    if app_root is None:
        raise BenchError(f"no process runs {word!r} in the dyno of pid {root}: {members}")
    app = set(descendants(table, app_root))
    return DynoMemory(
        [table[pid] for pid in members if pid not in app],
        [table[pid] for pid in members if pid in app],
    )


# The platform under test.


@dataclass
class Bench:
    kapal: Kapal
    user: User
    app_id: str = ""

    def api(self) -> httpx.Client:
        return self.user.api_client()

    def scale(self, **quantities: int) -> None:
        updates = [{"type": t, "quantity": q} for t, q in quantities.items()]
        with self.api() as client:
            response = client.patch(f"/apps/{APP}/formation", json={"updates": updates})
        if not response.is_success:
            raise BenchError(f"scaling {quantities}: {response.status_code} {response.text}")

    def rows(self) -> list[tuple[str, str, str, int | None]]:
        """The app's dyno rows in the store: (name, type, state, pid)."""
        uri = f"file:{self.kapal.data_dir / 'state' / 'kapal.db'}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=10) as db:
            return db.execute(
                "SELECT name, type, state, pid FROM dynos WHERE app_id = ? AND type != 'run'",
                (self.app_id,),
            ).fetchall()

    def up(self, type_: str) -> int:
        """How many dynos of `type_` the API lists up."""
        with self.api() as client:
            dynos = client.get(f"/apps/{APP}/dynos").json()
        return sum(1 for d in dynos if d["type"] == type_ and d["state"] == "up")

    def agent_pid(self) -> int:
        assert self.kapal.process is not None
        parent = self.kapal.process.pid
        for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
            argv = (_read(f"/proc/{child}/cmdline") or "").split("\0")
            if "kapal.entrypoints.agent" in argv:
                return int(child)
        raise BenchError("kapal up runs no agent")

    def agent_rss(self) -> float:
        """The agent's RSS in MB."""
        return _kb_field(_read(f"/proc/{self.agent_pid()}/status"), "VmRSS:") / 2**20

    def release_dir(self) -> Path:
        """The newest unpacked release of the app (the slug its dynos run)."""
        releases = sorted(
            (self.kapal.data_dir / "dynos" / self.app_id).glob("v*"),
            key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else -1,
        )
        if not releases:
            raise BenchError("no unpacked release of the app")
        return releases[-1]


def until(check: Callable[[], object], what: str, timeout: float = WAIT) -> float:
    """Poll `check` until truthy; the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {timeout:g} s")
        time.sleep(POLL)
    return time.monotonic()


def deploy(bench: Bench) -> None:
    repo = bench.user.checkout("flask-hello", APP)
    with (repo / "app.py").open("a") as source:
        source.write(DYNO_PAGE)
    procfile = repo / "Procfile"
    procfile.write_text(procfile.read_text().rstrip("\n") + f"\n{IDLE}\n")
    bench.user.commit(repo, "a /dyno page and an idle process type")
    bench.user.cli("create", APP, cwd=repo)
    bench.user.git("push", "kapal", "main", cwd=repo)
    bench.app_id = bench.user.api(f"/apps/{APP}")["id"]
    with bench.user.router_client(APP) as client:
        until(lambda: _answer(client, "/dyno") == "web.1", "the app answering")


def _answer(client: httpx.Client, path: str) -> str | None:
    try:
        response = client.get(path)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def app_boot(bench: Bench, copies: int = 1) -> float:
    """Seconds from starting the web command directly, `copies` times at once (a dyno's
    environment, this machine's processes, no Kapal), until every copy answers /dyno."""
    release = bench.release_dir()
    pid = next(pid for name, _, state, pid in bench.rows() if name == "web.1" and pid)
    environ = (_read(f"/proc/{pid}/environ") or "").split("\0")
    dyno_env = dict(item.split("=", 1) for item in environ if "=" in item)
    home = dyno_env.get("HOME", str(release))  # the dyno's view; maybe /app in a sandbox
    env = {k: v.replace(home, str(release)) for k, v in dyno_env.items()}
    formation = bench.user.api(f"/apps/{APP}/formation")
    command = next(f["command"] for f in formation if f["type"] == "web")
    ports = [free_port() for _ in range(copies)]
    started = time.monotonic()
    started_processes = [
        subprocess.Popen(
            dyno_argv(command),
            cwd=release,
            env={**env, "HOME": str(release), "PORT": str(port), "DYNO": f"boot.{port}"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for port in ports
    ]
    try:
        waiting = set(ports)
        with httpx.Client(timeout=5) as client:

            def all_answer() -> bool:
                for port in list(waiting):
                    if _answer(client, f"http://127.0.0.1:{port}/dyno") == f"boot.{port}":
                        waiting.discard(port)
                return not waiting

            answered = until(all_answer, "the app started directly")
        return answered - started
    finally:
        for process in started_processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in started_processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class ScaleTiming:
    up: float  # seconds until the API lists all up
    routed: float  # seconds until each has answered through the router


def scale_up(bench: Bench) -> ScaleTiming:
    bench.scale(web=0)
    until(lambda: not any(t == "web" for _, t, _, _ in bench.rows()), "web dynos gone")
    time.sleep(2)  # they leave the rows first, then get SIGTERM: let them end
    seen: set[str] = set()
    done = threading.Event()
    routed: list[float] = []

    def route() -> None:
        with bench.user.router_client(APP) as client:
            while not done.is_set():
                name = _answer(client, "/dyno")
                if name:
                    seen.add(name)
                    if len(seen) == SCALE:
                        routed.append(time.monotonic())
                        return
                else:
                    time.sleep(POLL)  # none up yet: the router answers at once

    started = time.monotonic()
    bench.scale(web=SCALE)
    poller = threading.Thread(target=route, daemon=True)
    poller.start()
    try:
        up = until(lambda: bench.up("web") == SCALE, f"{SCALE} web dynos up")
        poller.join(WAIT)
    finally:
        done.set()
    if not routed:
        raise BenchError(f"the router answered from {sorted(seen)} only")
    return ScaleTiming(up - started, routed[0] - started)


def kapal_run(bench: Bench) -> float:
    """Seconds from starting `kapal run echo hi` until `hi` is printed."""
    started = time.monotonic()
    process = subprocess.Popen(
        [KAPAL, "run", "-a", APP, "echo hi"],
        env=bench.user.env,
        cwd=bench.user.home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        output = b""
        while b"hi" not in output:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise BenchError(f"kapal run ended without printing hi: {output!r}")
            output += chunk
        return time.monotonic() - started
    finally:
        process.stdout.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class OneOffTiming:
    api: float  # POST /apps/{app}/dynos answered
    greeting: float  # connected, secret sent, the agent's greeting line read
    output: float  # the first output of the dyno

    @property
    def total(self) -> float:
        return self.api + self.greeting + self.output


def rendezvous_run(bench: Bench) -> OneOffTiming:
    """`echo hi` through the API and the rendezvous, as `kapal run` does it, without the CLI."""
    with bench.api() as client:
        started = time.monotonic()
        response = client.post(f"/apps/{APP}/dynos", json={"command": "echo hi", "attach": True})
        created = time.monotonic()
    if not response.is_success:
        raise BenchError(f"POST /apps/{APP}/dynos: {response.status_code} {response.text}")
    url = urlsplit(response.json()["attach_url"])
    secret = url.path.lstrip("/") + (f"?{url.query}" if url.query else "")
    with socket.create_connection((url.hostname or "localhost", url.port or 0), 10) as sock:
        sock.settimeout(10)
        sock.sendall(f"{secret}\r\n".encode())
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise BenchError("the rendezvous closed before its greeting")
            data += chunk
        greeted = time.monotonic()
        data = data.split(b"\n", 1)[1]
        while b"hi" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise BenchError(f"the one-off ended without printing hi: {data!r}")
            data += chunk
        printed = time.monotonic()
    return OneOffTiming(created - started, greeted - created, printed - greeted)


def memory(bench: Bench, type_: str, word: str) -> list[DynoMemory]:
    """Each `type_` dyno's processes, split into the app's and the rest."""
    table = processes()
    agent_cgroup = table[bench.agent_pid()].cgroup
    pids = [pid for _, t, state, pid in bench.rows() if t == type_ and state == "up" and pid]
    return [dyno_memory(table, pid, word, agent_cgroup) for pid in pids]


def _mb(values: Iterable[int]) -> list[float]:
    return [value / 2**20 for value in values]


def measure(bench: Bench, runs: int) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    bench.scale(web=0)
    until(lambda: not bench.rows(), "no dynos")
    time.sleep(1)
    agent_idle = bench.agent_rss()

    boots = [app_boot_with_web1(bench) for _ in range(runs)]
    boots_many = [app_boot_with_web1(bench, SCALE) for _ in range(runs)]
    timings = [scale_up(bench) for _ in range(runs)]
    boot = statistics.median(boots)
    many = statistics.median(boots_many)
    rows += [
        Row("app boot (web command started directly)", "s", boots),
        Row(f"app boot, {SCALE} copies at once (directly)", "s", boots_many),
        Row(f"scale web=0 -> {SCALE}: all up (API)", "s", [t.up for t in timings]),
        Row(
            f"scale web=0 -> {SCALE}: each answered via router",
            "s",
            [t.routed for t in timings],
            f"<= boot + 1 s = {boot + 1:.2f} s ({SCALE} at once: {many + 1:.2f} s)",
        ),
    ]

    time.sleep(2)  # the last dyno up a moment ago: let the agent settle
    web = memory(bench, "web", "gunicorn")
    agent_ten = bench.agent_rss()
    notes.append(f"a web dyno: {web[0].layout()}")

    cli = [kapal_run(bench) for _ in range(runs)]
    direct = [rendezvous_run(bench) for _ in range(runs)]
    rows += [
        Row("one-off: `kapal run echo hi` to `hi`", "s", cli, "< 0.2 s + command"),
        Row("one-off via API + rendezvous to `hi`", "s", [d.total for d in direct], "< 0.2 s"),
        Row("  POST /apps/{app}/dynos", "s", [d.api for d in direct]),
        Row("  connect, secret, greeting", "s", [d.greeting for d in direct]),
        Row("  greeting to first output", "s", [d.output for d in direct]),
    ]

    bench.scale(web=SCALE, idle=MANY - SCALE)
    until(lambda: bench.up("idle") == MANY - SCALE, f"{MANY - SCALE} idle dynos up")
    time.sleep(3)
    idle = memory(bench, "idle", "sleep")
    notes.append(f"an idle dyno: {idle[0].layout()}")
    agent_many = bench.agent_rss()
    rows += [
        Row(f"Kapal per web dyno, RSS ({len(web)} dynos)", "MB", _mb(m.rss for m in web), "<= 2"),
        Row(f"Kapal per web dyno, PSS ({len(web)} dynos)", "MB", _mb(m.pss for m in web)),
        Row(f"Kapal per idle dyno, RSS ({len(idle)})", "MB", _mb(m.rss for m in idle), "<= 2"),
        Row(f"Kapal per idle dyno, PSS ({len(idle)})", "MB", _mb(m.pss for m in idle)),
        Row("agent RSS, 0 dynos", "MB", [agent_idle]),
        Row(f"agent RSS, {SCALE} dynos", "MB", [agent_ten]),
        Row(f"agent RSS, {MANY} dynos", "MB", [agent_many], "<= 40"),
    ]
    bench.scale(web=0, idle=0)
    return rows, notes


def app_boot_with_web1(bench: Bench, copies: int = 1) -> float:
    """app_boot() needs a running web dyno to copy its environment from."""
    if not any(name == "web.1" and state == "up" for name, _, state, _ in bench.rows()):
        bench.scale(web=1)
        until(lambda: bench.up("web") == 1, "web.1 up")
    return app_boot(bench, copies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per timing (default 5)")
    args = parser.parse_args(argv)

    def run(kapal: Kapal, user: User) -> tuple[list[Row], list[str]]:
        bench = Bench(kapal, user)
        deploy(bench)
        notes = [line.strip() for line in kapal.output().splitlines() if "sandbox" in line]
        rows, layouts = measure(bench, args.runs)
        return rows, notes + layouts

    return run_bench(f"{APP}: flask-hello's dynos on Kapal", LEGEND, run)


if __name__ == "__main__":
    sys.exit(main())
