"""A steady load on one app through the router, counting every failed request.

Several clients, each in a thread, one request after another: GETs and POSTs with a body,
on keep-alive connections and on a new connection per request, and optionally requests that
take a while (in flight when a dyno is stopped: it must finish them). A request fails when it
raises (refused, reset, timed out...) or answers anything but 2xx with the expected body.
Used by tests/e2e (zero failed requests through deploys) and bench/zero_downtime.py.

Self-contained (stdlib only), so both can import it.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import threading
import time
from dataclasses import dataclass, field

# (method, path, keep-alive) of each client. GET / must answer Load.answer; POST /echo gets
# 1 B to 32 KiB and must answer its length and SHA-256; any other GET must answer 2xx.
MIX = (("GET", "/", True), ("GET", "/", False), ("POST", "/echo", True), ("POST", "/echo", False))
MAX_BODY = 32 * 1024


@dataclass
class Load:
    """`with Load(port, host) as load:` runs the clients until the block ends."""

    port: int
    host: str  # the Host header: NAME.localhost:PORT
    answer: str = "Hello from Kapal\n"  # what GET / must answer
    clients: tuple[tuple[str, str, bool], ...] = MIX
    pause: float = 0.005  # seconds between one client's requests
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)  # monotonic times of good answers
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _started: float = 0.0

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        for number, (method, path, keep_alive) in enumerate(self.clients):
            name = f"{method} {path} {'keep-alive' if keep_alive else 'new connection'} #{number}"
            thread = threading.Thread(
                target=self._client, args=(name, method, path, keep_alive), name=name, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self.wait_for_answers(5 * len(self.clients))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def wait_for_answers(self, count: int, timeout: float = 30.0) -> None:
        """Until `count` more requests were answered well (or a failure happened)."""
        target = len(self.answered) + count
        deadline = time.monotonic() + timeout
        while len(self.answered) < target and not self.failures:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the load got no {count} answers in {timeout:g} s")
            time.sleep(0.01)

    @property
    def failed(self) -> int:
        return len(self.failures)

    def longest_gap(self) -> float:
        """The longest time between two good answers (any client): how long serving stopped."""
        times = sorted(self.answered)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def summary(self) -> str:
        return f"{self.sent} requests, {self.failed} failed"

    def report(self, limit: int = 20) -> str:
        """The failures, for an assertion message."""
        shown = "\n".join(self.failures[:limit])
        more = f"\n... and {self.failed - limit} more" if self.failed > limit else ""
        return f"{self.summary()}:\n{shown}{more}"

    def _client(self, name: str, method: str, path: str, keep_alive: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        sizes = itertools.cycle((1, 100, 4096, MAX_BODY, 777))
        while not self._stop.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            body = os.urandom(next(sizes)) if method == "POST" else None
            sent = time.monotonic()
            with self._lock:
                self.sent += 1
            try:
                problem = self._request(conn, method, path, body, keep_alive)
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{exc.__class__.__name__}: {exc}"
                conn.close()
                conn = None
            if not keep_alive and conn is not None:
                conn.close()
                conn = None
            with self._lock:
                if problem:
                    self.failures.append(f"{sent - self._started:7.2f} s {name}: {problem}")
                else:
                    self.answered.append(time.monotonic())
            time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def _request(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        body: bytes | None,
        keep_alive: bool,
    ) -> str:
        """An empty string when answered well, else what was wrong."""
        headers = {"Host": self.host}
        if not keep_alive:
            headers["Connection"] = "close"
        expected: bytes | None = None  # any body will do
        if body is None:
            conn.request(method, path, headers=headers)
            if path == "/":
                expected = self.answer.encode()
        else:
            headers["Content-Type"] = "application/octet-stream"
            conn.request(method, path, body=body, headers=headers)
            expected = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        response = conn.getresponse()
        data = response.read()
        if 200 <= response.status < 300 and expected in (None, data):
            return ""
        dyno = response.getheader("Via", "")
        return f"{response.status} {data[:200]!r} {dyno}".rstrip()
