"""A small add-on provider speaking Heroku's Add-on Partner API, for the tests: a real HTTP
server on 127.0.0.1 in a thread that checks Basic auth, records every request, and answers
as `mode` says (a working provider by default, or one of the ways a provider fails)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROVIDER_ID = "acme-search"
PASSWORD = "s3cret-provider-password"
PATH = "/heroku/resources"

# What the provider does when asked to provision: answer properly, or fail in one way.
MODES = ("ok", "error", "slow", "garbage", "bad-config", "accepted", "no-id")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Provider:
    """What the server was sent, and how it answers provision requests."""

    mode: str = "ok"
    requests: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)  # ends slow answers
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    created: int = 0

    @property
    def base_url(self) -> str:
        return self.url + PATH

    def sent(self, method: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.method == method]

    def answer(self, received: Received) -> tuple[int, object]:
        with self.lock:
            self.requests.append(received)
        expected = base64.b64encode(f"{PROVIDER_ID}:{PASSWORD}".encode()).decode()
        if received.headers.get("authorization") != f"Basic {expected}":
            return 401, {"message": "bad credentials"}
        if received.method == "POST" and received.path == PATH:
            return self._provision(received.body)
        if received.method == "PUT" and received.path.startswith(PATH + "/"):
            plan = received.body["plan"]
            return 200, {"config": {"ACME_URL": f"http://acme.test/{plan}"}, "message": "moved"}
        if received.method == "DELETE" and received.path.startswith(PATH + "/"):
            return 204, None
        return 404, {"message": "no such route"}

    def _provision(self, body: dict[str, Any]) -> tuple[int, object]:
        self.created += 1
        ident = f"acme-{self.created}"
        config = {"ACME_URL": f"http://acme.test/{body['uuid']}", "ACME_TOKEN": "t0k"}
        if self.mode == "error":
            return 500, {"message": "the index is on fire"}
        if self.mode == "slow":
            self.released.wait(30)
            return 200, {"id": ident, "config": config}
        if self.mode == "garbage":
            return 200, b"<html>Welcome to nginx</html>"
        if self.mode == "bad-config":
            return 200, {"id": ident, "config": {"ACME_URL": 42}}
        if self.mode == "accepted":
            return 202, {"id": ident, "message": "working on it"}
        if self.mode == "no-id":
            return 200, {"config": config}
        return 200, {"id": ident, "config": config, "message": "Acme is ready."}


@contextmanager
def running_provider() -> Iterator[Provider]:
    provider = Provider()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            received = Received(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            status, body = provider.answer(received)
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body is not None:
                self.wfile.write(payload)

        do_POST = do_PUT = do_DELETE = do_GET = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield provider
    finally:
        provider.released.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
