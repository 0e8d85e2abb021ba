"""One running Kapal (`kapal up` on free ports and a temporary data directory) for e2e tests,
and a user's shell around it: the `kapal` CLI, git, HTTP through the router."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from bench.kapal_up import leftover_processes, shell_env

from tests.conftest import free_port

KAPAL = str(Path(sys.executable).parent / "kapal")
T = TypeVar("T")
APPS = Path(__file__).parent.parent / "apps"


@dataclass
class KapalServer:
    root: Path
    ports: dict[str, int]
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "KAPAL_DATA_DIR": str(self.root / "data"),
            "KAPAL_API_PORT": str(self.ports["api"]),
            "KAPAL_API_TLS_PORT": str(self.ports["api_tls"]),
            "KAPAL_ROUTER_PORT": str(self.ports["router"]),
            "KAPAL_ROUTER_TLS_PORT": str(self.ports["router_tls"]),
            "KAPAL_LOGS_PORT": str(self.ports["logs"]),
            "KAPAL_RENDEZVOUS_PORT": str(self.ports["rendezvous"]),
            "KAPAL_POSTGRES_PORT": str(self.ports["postgres"]),
            "KAPAL_STOP_GRACE": "5",
            "KAPAL_BUILD_MEMORY": "512M",  # the e2e tests push a build past it
            # The machine's MariaDB and RabbitMQ, for kapal-mysql and kapal-rabbitmq.
            "KAPAL_MYSQL_ADMIN_URL": "mysql://root@127.0.0.1:3306",
            "KAPAL_RABBITMQ_ADMIN_URL": "amqp://guest:guest@127.0.0.1:5672/",
        }

    @property
    def api_url(self) -> str:
        return f"http://localhost:{self.ports['api']}"

    def start(self) -> None:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [KAPAL, "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 90
        for line in self.process.stdout:
            self.output.append(line)
            if "Kapal is up." in line:
                break
            if time.monotonic() > deadline:
                break
        if not any("Kapal is up." in line for line in self.output):
            self.stop()
            raise RuntimeError("kapal up did not start:\n" + "".join(self.output))
        # Keep draining its output so the pipe never blocks the platform.
        import threading

        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


@dataclass
class User:
    """A user's shell: own HOME (so ~/.netrc), own working directory."""

    server: KapalServer
    home: Path

    @property
    def env(self) -> dict[str, str]:
        return shell_env(self.home, self.server.api_url, "test")

    def kapal(
        self,
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [KAPAL, *args],
            cwd=cwd or self.home,
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kapal {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def git(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=600
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} exited {result.returncode}\n{result.stdout}{result.stderr}"
            )
        return result

    def checkout(self, sample: str, name: str | None = None) -> Path:
        """A fresh git repository holding one of tests/apps/, committed on main."""
        repo = self.home / (name or sample)
        shutil.copytree(APPS / sample, repo)
        self.git("init", "-q", "-b", "main", cwd=repo)
        self.git("add", "-A", cwd=repo)
        self.git("commit", "-q", "-m", f"{sample} sample app", cwd=repo)
        return repo

    def get(self, app: str, path: str = "/", **kwargs: object) -> httpx.Response:
        """A request through the router, as a browser would send it to NAME.localhost."""
        port = self.server.ports["router"]
        return httpx.get(
            f"http://127.0.0.1:{port}{path}",
            headers={"Host": f"{app}.localhost:{port}"},
            timeout=90,
            **kwargs,  # type: ignore[arg-type]
        )


def processes_under(root: Path) -> list[str]:
    """Processes (dynos, PostgreSQL...) whose working directory is inside root, with their
    command lines."""
    return [
        f"{pid} {Path(f'/proc/{pid}/cmdline').read_text().replace(chr(0), ' ')}"
        for pid in leftover_processes(root)
    ]


def start_server() -> KapalServer:
    root = Path(tempfile.mkdtemp(prefix="kapal-e2e-"))
    root.chmod(0o711)
    names = ("api", "api_tls", "router", "router_tls", "logs", "rendezvous", "postgres")
    server = KapalServer(root, {name: free_port() for name in names})
    server.start()
    return server


def new_user(server: KapalServer, name: str) -> User:
    home = server.root / "home" / name
    home.mkdir(parents=True)
    return User(server, home)


def wait_for(check: Callable[[], T], timeout: float = 60, interval: float = 0.1) -> T:
    """Poll until check() returns something truthy; return it (or fail with the last value)."""
    deadline = time.monotonic() + timeout
    last = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout:g} s; last value: {last!r}")
        time.sleep(interval)
        last = check()
    return last
