"""A fake Kapal API on httpx.MockTransport (the client's transport seam), and `Kapal`, which runs
the real command group against it through click's CliRunner."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result

from kapal.cli.context import CliEnv
from kapal.cli.main import build_cli

API = "http://localhost:5000"
TOKEN = "tok-123"
EMAIL = "user@example.com"
NOW = datetime(2026, 11, 26, 13, 39, 28, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


def app_json(name: str = "demo", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "web_url": f"http://{name}.localhost:8080/",
        "git_url": f"{API}/{name}.git",
        "owner": {"id": "u1", "email": EMAIL},
        "maintenance": False,
        "created_at": "2026-11-26T13:00:00Z",
        "updated_at": "2026-11-26T13:00:00Z",
        "released_at": "2026-11-26T13:39:22Z",
        "stack": {"id": "s", "name": "kapal-24"},
        "region": {"id": "r", "name": "local"},
        **extra,
    }


def release_json(version: int, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"rel-{version}",
        "version": version,
        "description": description,
        "status": "succeeded",
        "current": False,
        "user": {"id": "u1", "email": EMAIL},
        "slug": {"id": f"slug-{version}"},
        "created_at": "2026-11-26T13:39:22Z",
        "updated_at": "2026-11-26T13:39:22Z",
        **extra,
    }


@dataclass
class FakeApi:
    """Answers registered (method, path) routes; records every request it gets."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        status: int = 200,
        handler: Handler | None = None,
    ) -> None:
        if handler is None:

            def handler(_: httpx.Request) -> httpx.Response:
                if json_body is None:
                    return httpx.Response(status)
                return httpx.Response(status, json=json_body)

        self.routes[(method, path)] = handler

    def error(self, method: str, path: str, status: int, id_: str, message: str) -> None:
        self.on(method, path, {"id": id_, "message": message}, status=status)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            message = f"fake API has no route {request.method} {request.url.path}"
            return httpx.Response(404, json={"id": "not_found", "message": message})
        return handler(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def one(self, method: str, path: str) -> httpx.Request:
        found = self.sent(method, path)
        assert len(found) == 1, f"{method} {path} sent {len(found)} times: {self.requests}"
        return found[0]


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def assert_token(request: httpx.Request, token: str = TOKEN) -> None:
    assert request.headers["authorization"] == f"Bearer {token}"
    assert request.headers["accept"] == "application/vnd.heroku+json; version=3"


@dataclass
class Kapal:
    fake: FakeApi
    home: Path
    netrc_path: Path
    opened: list[str] = field(default_factory=list)

    def environ(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "NETRC": str(self.netrc_path),
            "KAPAL_API_URL": API,
            "GIT_CEILING_DIRECTORIES": str(self.home.parent),
            "GIT_CONFIG_NOSYSTEM": "1",
            **extra,
        }

    def __call__(
        self,
        *args: str,
        input: str | bytes | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin_tty: bool = False,
        stdout_tty: bool = False,
    ) -> Result:
        cli_env = CliEnv(
            environ=self.environ(**(env or {})),
            cwd=cwd or self.home,
            transport=self.fake.transport,
            stdin_tty=stdin_tty,
            stdout_tty=stdout_tty,
            open_browser=self._open,
            now=lambda: NOW,
            tz=UTC,
            home=self.home,
        )
        return CliRunner().invoke(
            build_cli(), list(args), input=input, obj=cli_env, catch_exceptions=False
        )

    def _open(self, url: str) -> bool:
        self.opened.append(url)
        return True
