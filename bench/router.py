"""Router figures: Kapal's router against nginx on this machine, in one run.

Starts, on 127.0.0.1 in a temporary directory:

- the same upstreams for every row: nginx with one worker (`return 200` with a 200-byte body,
  a 10 MiB file for downloads), and a uvloop server that answers a GET after 100 ms and a POST
  once it has read the body (uploads);
- Kapal's router as `kapal up` runs it (`python -m kapal.entrypoints.router`, its workers
  from KAPAL_ROUTER_WORKERS), routing `hello.<domain>` and `slow.<domain>` to those upstreams
  as the apps' web dynos, read from a real store; its log lines go through LogSender to a
  receiving socket that counts them;
- nginx set up the same way: host routing by server_name, upstream keepalive, an access log
  line per request (to a file, buffered), as many workers as Kapal's router.

Then, with wrk (bounded by -d) against each of: direct (no router), nginx, Kapal, it prints
req/s and p50/p99 latency at c=1, 16 and 64; MB/s for a 10 MiB body (download and upload);
256 concurrent requests to the 100 ms upstream (a burst of 256 on fresh connections: its total
time; then wrk at c=256: req/s and p99); the router's idle RSS (every process, and their sum);
and Kapal ÷ nginx for each. It prints figures and never asserts them.

Run: .venv/bin/python bench/router.py [--duration 6] [--workers N]   (part of `make bench`)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from kapal.settings import Settings
from kapal.store.db import Store
from kapal.store.models import App, Dyno, Formation, Release, Slug, User

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "bench.test"
HELLO = f"hello.{DOMAIN}"
SLOW = f"slow.{DOMAIN}"
BODY = b"x" * 199 + b"\n"
BIG = 10 * 1024 * 1024
CONCURRENCY = (1, 16, 64)
SLOW_CONCURRENCY = 256
READY_TIMEOUT = 30.0
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

UPSTREAM_NGINX = """
user root;
daemon off;
worker_processes 1;
pid {tmp}/upstream.pid;
error_log {tmp}/upstream-error.log warn;
events {{ worker_connections 16384; }}
http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    client_max_body_size 0;
    client_body_temp_path {tmp}/upstream-body;
    proxy_temp_path {tmp}/upstream-proxy;
    fastcgi_temp_path {tmp}/upstream-fastcgi;
    uwsgi_temp_path {tmp}/upstream-uwsgi;
    scgi_temp_path {tmp}/upstream-scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = / {{ return 200 "{body}"; }}
        location = /big {{ alias {tmp}/big.bin; }}
    }}
}}
"""

ROUTER_NGINX = """
user root;
daemon off;
worker_processes {workers};
pid {tmp}/router.pid;
error_log {tmp}/router-error.log warn;
events {{ worker_connections 16384; }}
http {{
    default_type application/octet-stream;
    log_format router 'at=info method=$request_method path="$request_uri" host=$host '
        'request_id=$request_id fwd="$remote_addr" dyno=$upstream_addr '
        'connect=$upstream_connect_time service=$upstream_response_time status=$status '
        'bytes=$body_bytes_sent protocol=http';
    access_log {tmp}/router-access.log router buffer=64k flush=1s;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    client_max_body_size 0;
    client_body_temp_path {tmp}/router-body;
    proxy_temp_path {tmp}/router-proxy;
    fastcgi_temp_path {tmp}/router-fastcgi;
    uwsgi_temp_path {tmp}/router-uwsgi;
    scgi_temp_path {tmp}/router-scgi;
    upstream hello {{
        server 127.0.0.1:{hello}; keepalive 256; keepalive_requests 10000000;
        keepalive_timeout 60s;
    }}
    upstream slow {{
        server 127.0.0.1:{slow}; keepalive 256; keepalive_requests 10000000;
        keepalive_timeout 60s;
    }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto http;
    proxy_set_header X-Forwarded-Port $server_port;
    proxy_set_header X-Request-Id $request_id;
    proxy_set_header X-Request-Start $msec;
    proxy_connect_timeout 5s;
    proxy_read_timeout 30s;
    proxy_send_timeout 30s;
    proxy_buffering on;
    proxy_buffer_size 16k;
    proxy_buffers 16 16k;
    proxy_max_temp_file_size 0;
    proxy_request_buffering off;
    add_header Via "1.1 nginx" always;
    server {{
        listen 127.0.0.1:{port} default_server reuseport backlog=4096;
        return 404 "no such app\\n";
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name {hello_host};
        location / {{ proxy_pass http://hello; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name {slow_host};
        location / {{ proxy_pass http://slow; }}
    }}
}}
"""

SLOW_APP = """
import asyncio, re, sys, uvloop

BODY = b"x" * 199 + b"\\n"
REPLY = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(BODY), BODY)
OK = b"HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n"
LENGTH = re.compile(rb"(?i)\\r\\ncontent-length:[ \\t]*(\\d+)")


class App(asyncio.Protocol):
    # A GET is answered after 100 ms; a POST once its body (Content-Length) is read.
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""
        self.left = 0

    def data_received(self, data):
        if self.left:
            if len(data) < self.left:
                self.left -= len(data)
                return
            data, self.left = data[self.left :], 0
            self.transport.write(OK)
        self.buf += data
        while b"\\r\\n\\r\\n" in self.buf:
            head, self.buf = self.buf.split(b"\\r\\n\\r\\n", 1)
            if not head.startswith(b"POST"):
                asyncio.get_running_loop().call_later(0.1, self.reply)
                continue
            need = int(LENGTH.search(head).group(1))
            if len(self.buf) < need:
                self.left, self.buf = need - len(self.buf), b""
                return
            self.buf = self.buf[need:]
            self.transport.write(OK)

    def reply(self):
        if not self.transport.is_closing():
            self.transport.write(REPLY)


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(App, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    await server.serve_forever()

uvloop.run(main())
"""

UPLOAD_LUA = """
wrk.method = "POST"
wrk.path = "/upload"
wrk.body = string.rep("u", {size})
wrk.headers["Content-Type"] = "application/octet-stream"
"""


class BenchError(Exception):
    """Something the bench needs did not happen; the message says what."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# processes


@dataclass
class Server:
    """A server in a session of its own; stopped by its process group."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, argv: Sequence[str], tmp: Path, env: dict[str, str]) -> Server:
        log = tmp / f"{name}.out"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return cls(name, process, log)

    def pids(self) -> list[int]:
        """Every live process of its session (the server and its workers)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[3]) == self.process.pid and fields[0] != "Z":
                    found.append(int(entry))
        return sorted(found)

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / TICK

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def check(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(f"{self.name} exited ({self.process.returncode}):\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for pid in self.pids():  # a worker that outlived its parent
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def memory(pid: int) -> tuple[float, float]:
    """RSS and PSS in MiB."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss / 1024, pss / 1024


def get_status(port: int, host: str, path: str = "/") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(match.group(1)) if match else 0


def wait_ready(server: Server, port: int, host: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        server.check()
        try:
            if get_status(port, host) == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name} did not answer 200 for {host}:\n{server.output()}")
        time.sleep(0.05)


# Kapal's side: the store, the log receiver


def seed_store(settings: Settings, ports: dict[str, int]) -> None:
    """Apps `hello` and `slow`, each deployed with one web dyno up on its upstream's port."""
    store = Store.open(settings.database_url)
    try:
        with store.session() as session:
            owner = User(email="bench@example.com", password_hash="!")  # noqa: S106  # no login
            session.add(owner)
            session.flush()
            for name, port in ports.items():
                app = App(name=name, owner_id=owner.id)
                session.add(app)
                session.flush()
                slug = Slug(app_id=app.id, checksum="SHA256:0", size=1, process_types={"web": "x"})
                session.add(slug)
                session.flush()
                session.add(
                    Release(
                        app_id=app.id,
                        version=1,
                        description="bench",
                        slug_id=slug.id,
                        status="succeeded",
                    )
                )
                session.add(Formation(app_id=app.id, type="web", quantity=1))
                session.add(
                    Dyno(
                        app_id=app.id,
                        name="web.1",
                        type="web",
                        command="x",
                        release_version=1,
                        state="up",
                        port=port,
                    )
                )
    finally:
        store.engine.dispose()


class LogReceiver:
    """The log hub's socket: counts the router's datagrams (and the lines in them)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.lines = 0
        self.bad = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-receiver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = bytearray(1 << 16)
        while not self._stop.is_set():
            try:
                n = self.sock.recv_into(buf)
            except TimeoutError:
                continue
            except OSError:
                return
            if buf[0] == 0x5B:  # "[": a JSON array, as LogLine.encode writes it
                self.lines += 1 + buf.count(b"\n", 0, n)
            else:
                self.bad += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


# wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass
class Run:
    rps: float
    p50: float  # ms
    p99: float  # ms
    mbps: float  # MiB/s read
    requests: int
    errors: int
    cpu_us: float | None = None  # router CPU per request


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> Run:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out)
        if match is None:
            raise BenchError(f"wrk output without {pattern!r}:\n{out}")
        return match

    rps = float(find(r"Requests/sec:\s+([\d.]+)").group(1))
    p50 = _ms(find(r"\n\s+50%\s+(\S+)").group(1))
    p99 = _ms(find(r"\n\s+99%\s+(\S+)").group(1))
    number, unit = find(r"Transfer/sec:\s+([\d.]+)(\w+)").groups()
    requests = int(find(r"(\d+) requests in").group(1))
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return Run(rps, p50, p99, float(number) * _BYTES[unit] / 2**20, requests, errors)


def wrk(
    port: int,
    host: str,
    connections: int,
    seconds: float,
    path: str = "/",
    script: Path | None = None,
) -> Run:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    argv += ["-H", f"Host: {host}"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(f"http://127.0.0.1:{port}{path}")
    done = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + 60, env=os.environ
    )
    return parse_wrk(done.stdout)


# the 256-request burst


async def _burst(port: int, host: str, count: int) -> tuple[float, int]:
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

    async def one() -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            return head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    return elapsed, sum(1 for ok in results if ok is not True)


def burst(port: int, host: str, count: int = SLOW_CONCURRENCY) -> tuple[float, int]:
    """Seconds until `count` concurrent requests on fresh connections were all answered, and
    how many failed."""
    return asyncio.run(_burst(port, host, count))


# the bench


@dataclass
class Target:
    name: str
    port: int
    hello: str  # Host header for the 200-byte answer
    slow: str
    slow_port: int
    server: Server | None = None  # the router, for CPU time


def measure(target: Target, connections: int, seconds: float, path: str = "/", **kw: object) -> Run:
    python_app = path in ("slow", "/upload")  # the Python upstream reads upload bodies
    host = target.slow if python_app else target.hello
    port = target.slow_port if python_app else target.port
    before = target.server.cpu_seconds() if target.server else 0.0
    run = wrk(port, host, connections, seconds, "/" if path == "slow" else path, **kw)  # type: ignore[arg-type]
    if target.server is not None:
        target.server.check()
        used = target.server.cpu_seconds() - before
        run.cpu_us = used / max(run.requests, 1) * 1e6
    return run


def ratio(kapal: float, nginx: float) -> str:
    return f"{kapal / nginx:.2f}" if nginx else "-"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _stop_all(servers: list[Server]) -> None:
    for server in reversed(servers):
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per cell (6)")
    parser.add_argument(
        "--workers",
        type=int,
        default=getattr(Settings.from_env({}), "router_workers", 1),
        help="router workers for Kapal and nginx (default: Kapal's default)",
    )
    args = parser.parse_args(argv)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(
        f"machine: {len(os.sched_getaffinity(0))} cores, Python {sys.version.split()[0]}; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{args.workers} router worker(s) for Kapal and nginx; {args.duration:g} s per cell"
    )
    sys.stdout.flush()
    subprocess.run(
        [str(ROOT / "scripts" / "debian-packages"), "wrk", "nginx"], check=True, timeout=900
    )
    nginx = "/usr/sbin/nginx"
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kapal-rbench-")))
        servers: list[Server] = []
        stack.callback(_stop_all, servers)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        (tmp / "big.bin").write_bytes(os.urandom(BIG))
        ports = {name: free_port() for name in ("up", "slow", "nginx", "kapal")}

        (tmp / "upstream.conf").write_text(
            UPSTREAM_NGINX.format(tmp=tmp, port=ports["up"], body=BODY.decode().strip() + "\\n")
        )
        upstream = Server.start(
            "upstream", [nginx, "-c", str(tmp / "upstream.conf"), "-e", "stderr"], tmp, env
        )
        servers.append(upstream)
        (tmp / "slow.py").write_text(SLOW_APP)
        slow = Server.start(
            "slow", [sys.executable, str(tmp / "slow.py"), str(ports["slow"])], tmp, env
        )
        servers.append(slow)
        wait_ready(upstream, ports["up"], "up")
        wait_ready(slow, ports["slow"], "slow")

        (tmp / "router.conf").write_text(
            ROUTER_NGINX.format(
                tmp=tmp,
                workers=args.workers,
                port=ports["nginx"],
                hello=ports["up"],
                slow=ports["slow"],
                hello_host=HELLO,
                slow_host=SLOW,
            )
        )
        nginx_router = Server.start(
            "nginx", [nginx, "-c", str(tmp / "router.conf"), "-e", "stderr"], tmp, env
        )
        servers.append(nginx_router)

        data = tmp / "data"
        kapal_env = {
            **env,
            "KAPAL_DATA_DIR": str(data),
            "KAPAL_ROUTER_PORT": str(ports["kapal"]),
            "KAPAL_ROUTER_TLS_PORT": str(free_port()),
            "KAPAL_APPS_DOMAIN": DOMAIN,
            "KAPAL_ROUTER_WORKERS": str(args.workers),
        }
        settings = Settings.from_env(kapal_env)
        seed_store(settings, {"hello": ports["up"], "slow": ports["slow"]})
        receiver = LogReceiver(settings.log_socket)
        stack.callback(receiver.close)
        kapal = Server.start(
            "kapal", [sys.executable, "-m", "kapal.entrypoints.router"], tmp, kapal_env
        )
        servers.append(kapal)
        wait_ready(nginx_router, ports["nginx"], HELLO)
        wait_ready(kapal, ports["kapal"], HELLO)
        time.sleep(1.5)  # every worker listening, and settled

        idle = {name: server.pids() for name, server in (("nginx", nginx_router), ("kapal", kapal))}
        idle_mem = {name: [memory(pid) for pid in pids] for name, pids in idle.items()}

        targets = [
            Target("direct", ports["up"], "up", "slow", ports["slow"]),
            Target("nginx", ports["nginx"], HELLO, SLOW, ports["nginx"], nginx_router),
            Target("kapal", ports["kapal"], HELLO, SLOW, ports["kapal"], kapal),
        ]
        seconds = args.duration
        results: dict[tuple[str, str], Run] = {}

        def cell(key: str, run: Callable[[Target], Run]) -> None:
            for target in targets:
                results[(target.name, key)] = run(target)
                print(".", end="", flush=True)

        for target in targets:  # warm-up: pools filled, caches hot
            measure(target, 64, 1.0)
        for c in CONCURRENCY:
            cell(f"c={c}", lambda t, c=c: measure(t, c, seconds))  # type: ignore[misc]
        for c in (1, 8):
            cell(f"get c={c}", lambda t, c=c: measure(t, c, seconds, "/big"))  # type: ignore[misc]
        upload = tmp / "upload.lua"
        upload.write_text(UPLOAD_LUA.format(size=BIG))
        cell("put c=1", lambda t: measure(t, 1, seconds, "/upload", script=upload))

        bursts = {}
        for target in targets:
            bursts[target.name] = burst(target.slow_port, target.slow)
        cell("slow", lambda t: measure(t, SLOW_CONCURRENCY, seconds, "slow"))
        print()
        time.sleep(2.0)
        after_mem = {
            name: [memory(pid) for pid in srv.pids()]
            for name, srv in (("nginx", nginx_router), ("kapal", kapal))
        }
        nginx_lines = _count_lines(tmp / "router-access.log")
        kapal_lines = receiver.lines
        served = {
            name: sum(r.requests for (n, _), r in results.items() if n == name)
            for name in ("nginx", "kapal")
        }

        report(results, bursts, idle_mem, after_mem, args.workers)
        print(
            f"\nlog lines: nginx {nginx_lines:,} in its access log (buffered file); Kapal "
            f"{kapal_lines:,} received on the log socket ({receiver.bad} malformed); measured "
            f"requests: nginx {served['nginx']:,}, Kapal {served['kapal']:,} (warm-ups and the "
            f"bursts add to the lines)"
        )
    return 0


def _count_lines(path: Path) -> int:
    time.sleep(1.2)  # nginx flushes its buffer within 1 s
    try:
        with path.open("rb") as file:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
    except OSError:
        return 0


def report(
    results: dict[tuple[str, str], Run],
    bursts: dict[str, tuple[float, int]],
    idle: dict[str, list[tuple[float, float]]],
    after: dict[str, list[tuple[float, float]]],
    workers: int,
) -> None:
    names = ("direct", "nginx", "kapal")
    print("\nhello (200-byte body): req/s, p50 / p99 ms, router CPU µs per request")
    rows = [["", *(f"c={c} {n}" for c in CONCURRENCY for n in ("req/s", "p50/p99 ms"))]]
    rows[0].append("CPU µs/req c=64")
    for name in names:
        row = [name]
        for c in CONCURRENCY:
            run = results[(name, f"c={c}")]
            row += [f"{run.rps:,.0f}", f"{run.p50:.3f} / {run.p99:.3f}"]
        cpu = results[(name, "c=64")].cpu_us
        row.append("-" if cpu is None else f"{cpu:.1f}")
        rows.append(row)
    row = ["kapal ÷ nginx"]
    for c in CONCURRENCY:
        k, n = results[("kapal", f"c={c}")], results[("nginx", f"c={c}")]
        row += [ratio(k.rps, n.rps), f"{ratio(k.p50, n.p50)} / {ratio(k.p99, n.p99)}"]
    row.append(
        ratio(results[("kapal", "c=64")].cpu_us or 0, results[("nginx", "c=64")].cpu_us or 0)
    )
    rows.append(row)
    print(table(rows))

    print("\n10 MiB body: MiB/s (download c=1, c=8; upload c=1), p99 ms")
    keys = ("get c=1", "get c=8", "put c=1")
    rows = [["", *(f"{k} {m}" for k in keys for m in ("MiB/s", "p99 ms"))]]
    for name in names:
        row = [name]
        for key in keys:
            run = results[(name, key)]
            mbps = run.rps * BIG / 2**20 if key.startswith("put") else run.mbps
            row += [f"{mbps:,.0f}", f"{run.p99:.1f}"]
        rows.append(row)
    row = ["kapal ÷ nginx"]
    for key in keys:
        k, n = results[("kapal", key)], results[("nginx", key)]
        row += [ratio(k.rps, n.rps), ratio(k.p99, n.p99)]
    rows.append(row)
    print(table(rows))

    print(f"\n{SLOW_CONCURRENCY} concurrent requests to a 100 ms upstream")
    rows = [["", "burst: total s", "burst errors", "wrk req/s", "p50 ms", "p99 ms", "errors"]]
    for name in names:
        total, failed = bursts[name]
        run = results[(name, "slow")]
        rows.append(
            [
                name,
                f"{total:.3f}",
                str(failed),
                f"{run.rps:,.0f}",
                f"{run.p50:.1f}",
                f"{run.p99:.1f}",
                str(run.errors),
            ]
        )
    k, n = results[("kapal", "slow")], results[("nginx", "slow")]
    rows.append(
        [
            "kapal ÷ nginx",
            ratio(bursts["kapal"][0], bursts["nginx"][0]),
            "",
            ratio(k.rps, n.rps),
            ratio(k.p50, n.p50),
            ratio(k.p99, n.p99),
            "",
        ]
    )
    print(table(rows))

    print(
        f"\nrouter memory, MiB ({workers} worker(s); nginx: master + workers; Kapal: every "
        "process of the router)"
    )
    rows = [["", "processes", "idle RSS sum", "idle RSS each", "idle PSS sum", "RSS after load"]]
    for name in ("nginx", "kapal"):
        mem = idle[name]
        rows.append(
            [
                name,
                str(len(mem)),
                f"{sum(r for r, _ in mem):.1f}",
                " ".join(f"{r:.1f}" for r, _ in mem),
                f"{sum(p for _, p in mem):.1f}",
                " ".join(f"{r:.1f}" for r, _ in after[name]),
            ]
        )
    rss = {name: sum(r for r, _ in idle[name]) for name in ("nginx", "kapal")}
    most = {name: max((r for r, _ in idle[name]), default=0.0) for name in ("nginx", "kapal")}
    rows.append(
        [
            "kapal ÷ nginx",
            "",
            ratio(rss["kapal"], rss["nginx"]),
            f"largest: {ratio(most['kapal'], most['nginx'])}",
            "",
            "",
        ]
    )
    print(table(rows))
    errors = {f"{name} {key}": r.errors for (name, key), r in results.items() if r.errors}
    print(f"\nwrk cells with errors (socket errors + non-2xx): {errors or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
