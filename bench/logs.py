"""Log throughput: dynos writing log lines as fast as they can, through the agent's log hub to
a `--tail` client.

Starts its own Kapal (bench/kapal_up.py), pushes tests/apps/log-writer (a worker whose lines
hold the time they were written and the dyno's sequence number), opens a tail session as the
CLI does (POST /apps/{app}/log-sessions with tail=true, its URL read as Server-Sent Events),
scales to --dynos workers and, once they are all up and after a warm-up, measures for
--seconds (the flood):

- lines ingested: what the hub appended for the app, from the stream's event ids (the hub's
  sequence, one per line: lines the tail client lost to L11 count too); per second, and per
  core: ÷ the agent process's CPU seconds over the window (/proc/<pid>/stat);
- lines written by the dynos (from their sequence numbers), and lost before the hub: the L12
  notices' counts (notices the tail lost to L11 are not seen);
- how often the writers were found blocked in a write (their pipe full), sampled;
- delay from write to the tail client: when the client read a line minus its write time, over
  every line it received in the window;
- the agent's RSS (VmRSS): before the dynos start, sampled during the windows, after they stop.

Then the same dynos write at --paced-rate lines/s in all (default 50,000: the issue's rate per
core; LINES_PER_SECOND, a config var: a new release) for --paced-seconds: the delay at that
rate, when the hub keeps up.

The tail client reads its socket itself (no httpx): httpx parses the chunked body one chunk,
so one line, at a time in Python, and reads about 65,000 lines/s at most, slower than the hub.

Prints figures and the issue's targets beside them; it never asserts them. Optionally records
a py-spy profile of the agent over the flood (`--py-spy FILE`, .txt for raw stacks; py-spy must
be on PATH or in the venv, it is not a dependency of Kapal).

Run: .venv/bin/python bench/logs.py [--seconds 20] [--dynos 10]   (part of `make bench`)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kapal_up import BenchError, Kapal, User
from runtime import Bench, Row, _kb_field, _read, descendants, processes, run_bench, until

APP = "log-bench"
WARMUP = 2.0  # seconds of flood before the window opens
SAMPLE_EVERY = 0.2  # seconds between samples of the agent's RSS and the writers' state
PACED = 50_000  # lines/s of all dynos together in the paced window, by default
# Where the kernel holds a process writing to a full pipe (or socket).
WRITE_WAITS = {"pipe_write", "pipe_wait_writable", "sock_alloc_send_pskb"}
L11 = re.compile(rb"Error L11 \(Tail buffer overflow\) -> This tail session dropped (\d+)")
L12 = re.compile(rb"Error L12 \(Local buffer overflow\) -> \S+ dropped (\d+) lines")
TICK = os.sysconf("SC_CLK_TCK")
LEGEND = """
ingested: lines the hub appended for the app in the window (event ids of the tail stream).
per agent core: ingested ÷ the agent process's CPU seconds in the same window. written: the
dynos' own sequence numbers. blocked: samples of the writer processes found waiting in a write
(the kernel's buffer between dyno and agent full). delay: the tail client's read time minus
the line's write time, over every line the client received in the window; lines the hub never
took (L12) or the tail session dropped (L11) have no delay. In a flood, lines that waited in
the agent longer than kapal.runtime.output.MAX_AGE are dropped (L12), so the delay is that
age plus how long a line waits for the agent to read its pipe while the dynos take the CPU.
paced: the same dynos writing --paced-rate lines/s in all. RSS: VmRSS of the agent
process."""


@dataclass
class Counts:
    """What the tail client has seen so far."""

    last_id: int | None = None  # the hub's sequence number of the newest line received
    written: dict[str, int] = field(default_factory=dict)  # dyno -> newest sequence number
    received: int = 0  # app lines
    l11: int = 0
    l12: int = 0


class Tail(threading.Thread):
    """A `--tail` client on a log session URL, counting and timing what it reads."""

    def __init__(self, url: str) -> None:
        super().__init__(name="tail", daemon=True)
        self.url = urlsplit(url)
        self.counts = Counts()
        self.delays = array("d")  # seconds, of the app lines read while recording
        self.recording = False
        self.cpu = 0.0  # this thread's CPU seconds so far
        self.error: str | None = None
        self._stopping = threading.Event()
        self._sock: socket.socket | None = None

    def snapshot(self) -> Counts:
        counts = self.counts
        return Counts(counts.last_id, dict(counts.written), counts.received, counts.l11, counts.l12)

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):  # closed already
                self._sock.shutdown(socket.SHUT_RDWR)
        self.join(10)

    def run(self) -> None:
        try:
            self._read()
        except OSError as exc:
            if not self._stopping.is_set():
                self.error = f"the tail stream failed: {exc}"

    def _read(self) -> None:
        host, port = self.url.hostname or "127.0.0.1", self.url.port or 80
        request = (
            f"GET {self.url.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        )
        with socket.create_connection((host, port), timeout=30) as sock:
            self._sock = sock
            sock.settimeout(None)
            sock.sendall(request.encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError(f"the log session closed before its head: {data!r}")
                data += chunk
            head, rest = data.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 200"):
                raise OSError(f"the log session answered {head!r}")
            while not self._stopping.is_set():
                chunk = sock.recv(1 << 20)
                if not chunk:
                    if not self._stopping.is_set():
                        self.error = "the log session ended"
                    return
                now = time.time()
                # Chunked framing is left in: its lines never start with "id: " or "data: ".
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if line.startswith(b"data: "):
                        self._line(line, now)
                    elif line.startswith(b"id: "):
                        self.counts.last_id = int(line[4:])
                self.cpu = time.thread_time()

    def _line(self, line: bytes, now: float) -> None:
        # data: 2026-11-27T10:40:00.123456+00:00 app[worker.3]: <time> <seq> xxx...
        open_ = line.find(b"[", 39)
        close = line.find(b"]: ", open_)
        source, message = line[39:open_], line[close + 3 :]
        counts = self.counts
        dyno = line[open_ + 1 : close]
        if source == b"app" and dyno.startswith(b"worker."):
            written, seq, _ = message.split(b" ", 2)
            counts.received += 1
            counts.written[dyno.decode()] = int(seq)
            if self.recording:
                self.delays.append(now - float(written))
        elif match := L12.search(message):
            counts.l12 += int(match[1])
        elif match := L11.search(message):
            counts.l11 += int(match[1])


def dyno_states(kapal: Kapal) -> list[tuple[str, str, int, int | None]]:
    """(name, state, release version, pid) of the app's dynos in the store."""
    uri = f"file:{kapal.data_dir / 'state' / 'kapal.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        return db.execute(
            "SELECT d.name, d.state, d.release_version, d.pid"
            " FROM dynos d JOIN apps a ON a.id = d.app_id WHERE a.name = ? ORDER BY d.name",
            (APP,),
        ).fetchall()


def newest_release(kapal: Kapal) -> int:
    uri = f"file:{kapal.data_dir / 'state' / 'kapal.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        row = db.execute(
            "SELECT MAX(r.version) FROM releases r JOIN apps a ON a.id = r.app_id WHERE a.name = ?",
            (APP,),
        ).fetchone()
    return int(row[0] or 0)


def all_up(kapal: Kapal, dynos: int) -> bool:
    """Whether exactly `dynos` dynos run, all up, all of the newest release."""
    rows, newest = dyno_states(kapal), newest_release(kapal)
    return len(rows) == dynos and all(s == "up" and v == newest for _, s, v, _ in rows)


def log_session(user: User) -> str:
    with user.api_client() as client:
        response = client.post(f"/apps/{APP}/log-sessions", json={"lines": 0, "tail": True})
    if not response.is_success:
        raise BenchError(f"log session: {response.status_code} {response.text}")
    return str(response.json()["logplex_url"])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (all its threads) so far."""
    fields = (_read(f"/proc/{pid}/stat") or "").rsplit(")", 1)[-1].split()
    if len(fields) < 13:
        raise BenchError(f"process {pid} is gone")
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    return _kb_field(_read(f"/proc/{pid}/status"), "VmRSS:") / 2**20


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    program = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(program).exists():
        raise BenchError("--py-spy: py-spy is not installed (pip install py-spy)")
    argv = [program, "record", "--nonblocking", "--pid", str(pid), "--duration", str(int(seconds))]
    argv += ["--format", "raw" if out.suffix == ".txt" else "flamegraph", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def writer_pids(kapal: Kapal) -> list[int]:
    """The writer process of each of the app's dynos (below the sandbox and shell)."""
    table = processes()
    found = []
    for _, _, _, pid in dyno_states(kapal):
        for member in descendants(table, pid or 0):
            if any(Path(arg).name == "writer.py" for arg in table[member].argv):
                found.append(member)
    return found


def waits_to_write(pid: int) -> bool:
    """Whether the process is blocked in a write to a full pipe (or socket, under uvloop)."""
    return (_read(f"/proc/{pid}/wchan") or "") in WRITE_WAITS


@dataclass
class Window:
    """What one measuring window saw."""

    seconds: float
    cpu: float  # the agent's CPU seconds
    before: Counts
    after: Counts
    delays: list[float]  # seconds, sorted
    rss: list[float]  # MB, the agent's, sampled
    waiting: float  # the share of writer samples found blocked in a write
    client_cpu: float  # the tail client's CPU seconds

    @property
    def ingested(self) -> int:
        if self.before.last_id is None or self.after.last_id is None:
            raise BenchError("the tail stream carried no event ids")
        return self.after.last_id - self.before.last_id

    @property
    def written(self) -> int:
        before = self.before.written
        return sum(seq - before[dyno] for dyno, seq in self.after.written.items() if dyno in before)

    def delay_ms(self, fraction: float) -> float:
        if not self.delays:
            return float("nan")
        return 1000 * self.delays[min(len(self.delays) - 1, int(fraction * len(self.delays)))]


def measure_window(
    tail: Tail, agent: int, writers: list[int], seconds: float, profile: Path | None
) -> Window:
    profiler = py_spy(agent, seconds, profile) if profile else None
    tail.delays = array("d")
    before, cpu, started = tail.snapshot(), cpu_seconds(agent), time.monotonic()
    client_cpu = tail.cpu
    tail.recording = True
    rss: list[float] = []
    waits: list[bool] = []
    while (elapsed := time.monotonic() - started) < seconds:
        rss.append(rss_mb(agent))
        waits += [waits_to_write(pid) for pid in writers]
        time.sleep(min(SAMPLE_EVERY, max(0.0, seconds - elapsed)))
    after, cpu, ended = tail.snapshot(), cpu_seconds(agent) - cpu, time.monotonic()
    tail.recording = False
    rss.append(rss_mb(agent))
    if profiler is not None:
        profiler.wait(60)
    if tail.error:
        raise BenchError(tail.error)
    waiting = sum(waits) / len(waits) if waits else float("nan")
    delays = sorted(tail.delays)
    client_cpu = tail.cpu - client_cpu
    return Window(ended - started, cpu, before, after, delays, rss, waiting, client_cpu)


def start_writers(kapal: Kapal, tail: Tail, dynos: int) -> list[int]:
    """Until `dynos` dynos of the newest release are up; then a warm-up; their writers."""
    try:
        until(lambda: tail.error or all_up(kapal, dynos), f"{dynos} dynos up")
    except BenchError as exc:
        raise BenchError(f"{exc}: {dyno_states(kapal)}") from None
    time.sleep(WARMUP)
    if tail.error:
        raise BenchError(tail.error)
    return writer_pids(kapal)


def flood_rows(window: Window, dynos: int) -> list[Row]:
    seconds, per_core = window.seconds, window.ingested / window.cpu
    return [
        Row(f"lines written by {dynos} dynos", "lines/s", [window.written / seconds]),
        Row("lines ingested by the hub", "lines/s", [window.ingested / seconds]),
        Row("agent CPU", "cores", [window.cpu / seconds]),
        Row("lines ingested per agent core", "lines/s", [per_core], ">= 50,000"),
        *common_rows(window),
        Row("  agent RSS (samples)", "MB", window.rss, "bounded"),
    ]


def common_rows(window: Window) -> list[Row]:
    after, before = window.after, window.before
    return [
        Row("  lost before the hub (L12 notices seen)", "lines", [after.l12 - before.l12]),
        Row("  lost by the tail session (L11)", "lines", [after.l11 - before.l11]),
        Row("  writers blocked writing (samples)", "%", [100 * window.waiting]),
        Row("  delay write -> tail client, p50", "ms", [window.delay_ms(0.5)]),
        Row("  delay write -> tail client, p99", "ms", [window.delay_ms(0.99)], "< 50"),
        Row("  delay write -> tail client, max", "ms", [window.delay_ms(1.0)]),
    ]


def measure(kapal: Kapal, user: User, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    repo = user.checkout("log-writer", APP)
    user.cli("create", APP, cwd=repo)
    user.git("push", "-q", "kapal", "main", cwd=repo)
    agent = Bench(kapal, user).agent_pid()
    time.sleep(1)
    rss_before = rss_mb(agent)
    tail = Tail(log_session(user))
    tail.start()
    user.cli("ps:scale", f"worker={args.dynos}", "-a", APP)
    writers = start_writers(kapal, tail, args.dynos)
    flood = measure_window(tail, agent, writers, args.seconds, args.py_spy)

    # The same dynos at a steady rate the hub can take: what a line waits without a queue.
    rate = max(1, int(args.paced_rate / args.dynos))
    user.cli("config:set", f"LINES_PER_SECOND={rate}", "-a", APP)
    writers = start_writers(kapal, tail, args.dynos)
    paced = measure_window(tail, agent, writers, args.paced_seconds, None)

    user.cli("ps:scale", "worker=0", "-a", APP)
    time.sleep(3)
    rss_after = rss_mb(agent)
    tail.stop()

    paced_rate = paced.ingested / paced.seconds
    rows = [
        *flood_rows(flood, args.dynos),
        Row(f"paced, {rate} lines/s per dyno: ingested", "lines/s", [paced_rate]),
        *common_rows(paced),
        Row("  agent RSS (samples)", "MB", paced.rss),
        Row("agent RSS before the dynos started", "MB", [rss_before]),
        Row("agent RSS 3 s after they stopped", "MB", [rss_after]),
    ]
    seen = sorted(flood.after.written, key=lambda name: int(name.partition(".")[2]))
    notes = [
        f"flood window {flood.seconds:.1f} s, paced window {paced.seconds:.1f} s; in the flood "
        f"the tail client saw lines of {len(seen)} of {args.dynos} dynos and used "
        f"{flood.client_cpu / flood.seconds:.0%} of a core",
    ]
    if args.py_spy:
        notes.append(f"py-spy profile of the agent over the flood window: {args.py_spy}")
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="flood window (default 20)")
    parser.add_argument(
        "--paced-seconds", type=float, default=10.0, help="paced window (default 10)"
    )
    parser.add_argument("--dynos", type=int, default=10, help="writing dynos (default 10)")
    parser.add_argument(
        "--paced-rate",
        type=int,
        default=PACED,
        help=f"lines/s of all dynos in the paced window (default {PACED:,})",
    )
    parser.add_argument("--py-spy", type=Path, help="record a py-spy profile of the agent here")
    args = parser.parse_args(argv)
    title = f"{APP}: {args.dynos} dynos writing log lines as fast as they can"
    return run_bench(title, LEGEND, lambda kapal, user: measure(kapal, user, args))


if __name__ == "__main__":
    sys.exit(main())
