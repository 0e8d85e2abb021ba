"""Helpers for pushing to a real API: the server, a pusher with an app and a git shell."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from kapal.services.context import Context
from kapal.store.models import App, Release

APPS = Path(__file__).parents[2] / "apps"


@dataclass
class Api:
    ctx: Context
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Pusher:
    """A user with an API token and one app, and a shell to run git in."""

    api: Api
    token: str
    app: App
    home: Path

    @property
    def remote(self) -> str:
        return f"http://kapal:{self.token}@127.0.0.1:{self.api.port}/{self.app.name}.git"

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "Pusher",
            "GIT_AUTHOR_EMAIL": "pusher@example.com",
            "GIT_COMMITTER_NAME": "Pusher",
            "GIT_COMMITTER_EMAIL": "pusher@example.com",
        }

    def git(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env(), capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise AssertionError(f"git {args} exited {result.returncode}:\n{result.stderr}")
        return result

    def checkout(self, sample: str | None = None, files: dict[str, str] | None = None) -> Path:
        """A repository with one commit on main: a sample app, or the given files."""
        repo = self.home / "work" / (sample or "custom")
        if sample is not None:
            shutil.copytree(APPS / sample, repo)
        for name, text in (files or {}).items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
        self.git("init", "-q", "-b", "main", str(repo), cwd=self.home)
        self.git("add", "-A", cwd=repo)
        self.git("commit", "-qm", "deploy me", cwd=repo)
        return repo

    def remote_ref(self, cwd: Path, ref: str = "refs/heads/main") -> str:
        return self.git("ls-remote", self.remote, ref, cwd=cwd).stdout.strip()

    def releases(self) -> list[Release]:
        with self.api.ctx.store.session() as s:
            query = select(Release).where(Release.app_id == self.app.id).order_by(Release.version)
            return list(s.scalars(query))


def serve(app: FastAPI, sock: socket.socket) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test API did not start")
        time.sleep(0.01)
    return server, thread


SettleRelease = Callable[[App, str, str], threading.Thread]
