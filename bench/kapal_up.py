"""One Kapal for the bench: `kapal up` on free ports with a temporary data directory, and a
user's shell around it (the `kapal` CLI, git, the Platform API with the user's token).

Self-contained on purpose: tests/e2e/kapal_server.py does the same for pytest, but imports
pytest and sets limits the e2e suite needs; the bench runs Kapal with its default settings.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kapal.settings import Settings

KAPAL = str(Path(sys.executable).parent / "kapal")
APPS = Path(__file__).resolve().parent.parent / "tests" / "apps"
PORTS = ("api", "api_tls", "router", "router_tls", "logs", "rendezvous", "postgres", "mysql")
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
COMMAND_TIMEOUT = 600.0
HEROKU_ACCEPT = "application/vnd.heroku+json; version=3"


class BenchError(Exception):
    """Something the bench needs did not happen; the message says what, with the output."""


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Kapal:
    """`kapal up` in a session of its own, its output in a log file beside the data dir."""

    root: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "kapal-up.log"

    @property
    def api_url(self) -> str:
        return f"http://localhost:{self.ports['api']}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAPAL_DATA_DIR": str(self.data_dir),
            "KAPAL_API_PORT": str(self.ports["api"]),
            "KAPAL_API_TLS_PORT": str(self.ports["api_tls"]),
            "KAPAL_ROUTER_PORT": str(self.ports["router"]),
            "KAPAL_ROUTER_TLS_PORT": str(self.ports["router_tls"]),
            "KAPAL_LOGS_PORT": str(self.ports["logs"]),
            "KAPAL_RENDEZVOUS_PORT": str(self.ports["rendezvous"]),
            "KAPAL_POSTGRES_PORT": str(self.ports["postgres"]),
            "KAPAL_MYSQL_PORT": str(self.ports["mysql"]),  # unless KAPAL_MYSQL_ADMIN_URL is set
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [KAPAL, "up"],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while "Kapal is up." not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"kapal up did not start:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Ctrl-C to its process group, as a terminal would send it, and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"kapal up did not stop within {STOP_TIMEOUT:g} s; killing it", file=sys.stderr)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def cache_dir(self, app_id: str) -> Path:
        """The app's build cache (shared by its buildpacks; uv's own cache is in uv/)."""
        return self.data_dir / "cache" / app_id


def leftover_processes(root: Path) -> list[int]:
    """Processes (dynos, PostgreSQL...) still working inside root, or in a dyno cgroup of the
    Kapal whose data directory is root/data (jailed dynos' working directory is their /app)."""
    cgroups = f"/kapal-{Settings(data_dir=(root / 'data').resolve()).instance}/"
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            groups = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if cwd == str(root) or cwd.startswith(f"{root}/") or cgroups in groups:
            found.append(int(pid))
    return found


@contextmanager
def running_kapal() -> Iterator[Kapal]:
    """A started Kapal, stopped and its directory removed however the block ends."""
    root = Path(tempfile.mkdtemp(prefix="kapal-bench-"))
    root.chmod(0o711)  # as root, builds and dynos run as kapal-dyno and must pass through
    kapal = Kapal(root, {name: free_port() for name in PORTS})
    try:
        kapal.start()
        yield kapal
    except Exception:
        print(f"--- kapal up output (tail) ---\n{kapal.output()[-4000:]}", file=sys.stderr)
        raise
    finally:
        kapal.stop()
        for pid in leftover_processes(root):  # only ever ours: their cwd is in our temp dir
            print(f"process {pid} outlived kapal up; killing it", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def shell_env(home: Path, api_url: str, who: str) -> dict[str, str]:
    """The environment of a user's shell: own HOME, the CLI pointed at `api_url`, git's
    identity `who`, and git never prompting."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "KAPAL_API_URL": api_url,
        "GIT_AUTHOR_NAME": f"{who.title()} User",
        "GIT_AUTHOR_EMAIL": f"{who}@example.com",
        "GIT_COMMITTER_NAME": f"{who.title()} User",
        "GIT_COMMITTER_EMAIL": f"{who}@example.com",
        "GIT_TERMINAL_PROMPT": "0",
    }


@dataclass
class User:
    """A user's shell: own HOME (so ~/.netrc for the CLI and git), own working directory."""

    kapal: Kapal
    home: Path
    token: str = ""

    @property
    def env(self) -> dict[str, str]:
        return shell_env(self.home, self.kapal.api_url, "bench")

    def run(self, argv: list[str], cwd: Path | None = None, input: str | None = None) -> str:
        """Run a command in this shell; its stdout, or BenchError with all its output."""
        result = subprocess.run(
            argv,
            cwd=cwd or self.home,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise BenchError(
                f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def cli(self, *args: str, cwd: Path | None = None, input: str | None = None) -> str:
        return self.run([KAPAL, *args], cwd=cwd, input=input)

    def git(self, *args: str, cwd: Path) -> str:
        return self.run(["git", *args], cwd=cwd)

    def signup(self, email: str, password: str) -> None:
        self.cli("signup", "--email", email, input=f"{password}\n")
        self.token = self.cli("auth:token").strip()

    def api_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.kapal.api_url,
            headers={"Authorization": f"Bearer {self.token}", "Accept": HEROKU_ACCEPT},
            timeout=30.0,
        )

    def api(self, path: str) -> Any:
        with self.api_client() as client:
            response = client.get(path)
        if not response.is_success:
            raise BenchError(f"GET {path}: {response.status_code} {response.text}")
        return response.json()

    def router_client(self, app: str) -> httpx.Client:
        """Requests through the router as a browser sends them to NAME.localhost; a new
        connection each time, so no keep-alive connection can pin an old dyno."""
        port = self.kapal.ports["router"]
        return httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Host": f"{app}.localhost:{port}"},
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=30.0,
        )

    def checkout(self, sample: str, name: str) -> Path:
        """A fresh git repository holding one of tests/apps/, committed on main."""
        repo = self.home / name
        shutil.copytree(APPS / sample, repo, ignore=shutil.ignore_patterns("__pycache__"))
        self.git("init", "-q", "-b", "main", cwd=repo)
        self.commit(repo, f"{sample} sample app")
        return repo

    def commit(self, repo: Path, message: str) -> None:
        self.git("add", "-A", cwd=repo)
        self.git("commit", "-q", "-m", message, cwd=repo)


def stop_on_sigterm() -> None:
    """SIGTERM ends a benchmark as Ctrl-C does: every `finally` runs (kapal up stopped, its
    temporary directory removed)."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def signed_up_user(kapal: Kapal) -> User:
    """The benchmark's user: their own HOME, signed up."""
    home = kapal.root / "home" / "bench"
    home.mkdir(parents=True)
    user = User(kapal, home)
    user.signup("bench@example.com", "benchmark!")
    return user
