"""One timed deploy: `git push` with its stderr read line by line as it arrives, then the new
release's web dyno seen `up` through the API and the new version seen through the router.

Each phase ends at a moment measured from the start of `git push`:

| phase        | ends when                                                          |
|--------------|--------------------------------------------------------------------|
| receive      | `remote: Building source:` (pack received, tree uploaded, build made) |
| build        | `remote: -----> Compressing...` (buildpacks done)                  |
| slug         | `remote:        Done: <size>` (slug stored)                        |
| release      | `remote:        Released v<N>` (after the release phase, if any)   |
| boot         | the API lists a web dyno of v<N> `up`                              |
| route switch | the router's first answer from the new version                     |

The push's lines come in batches: the hook relays a build log the API tails every 0.1 s, so a
phase shorter than that may read 0.00 and the next one absorbs it. Boot and route switch are
polled every 0.05 s and 0.025 s. The total (to the router's answer) is not affected by batching.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from kapal_up import BenchError, User

PHASES = ("receive", "build", "slug", "release", "boot", "route switch")
LINE_MARKS = {
    "receive": re.compile(r"^remote: Building source:"),
    "build": re.compile(r"^remote: -----> Compressing\.\.\."),
    "slug": re.compile(r"^remote: +Done: "),
    "release": re.compile(r"^remote: +Released v(?P<version>\d+)"),
}
# Polling costs CPU the booting dyno needs on a small machine; these bound the error instead.
ROUTER_POLL = 0.025
API_POLL = 0.05
PUSH_TIMEOUT = 900.0
SERVE_TIMEOUT = 120.0

Check = Callable[[httpx.Client], tuple[bool, str]]


@dataclass(frozen=True)
class Timing:
    phases: dict[str, float]  # seconds, in PHASES order; they add up to the total

    @property
    def total(self) -> float:
        return sum(self.phases.values())


def line_mark(line: str) -> tuple[str, int | None] | None:
    """The phase a line of the push's stderr ends, and the release version if it says one."""
    for phase, pattern in LINE_MARKS.items():
        if found := pattern.match(line):
            version = found.groupdict().get("version")
            return phase, int(version) if version else None
    return None


def phases(ends: Mapping[str, float]) -> dict[str, float]:
    """Each phase's duration, from the time each ended (seconds after the push started).

    Boot and route switch are seen by two pollers: an answer from the new version proves its
    dyno up, so boot ends no later than that. Ends are made non-decreasing, so the durations
    are never negative and add up to the total."""
    ends = {**ends, "boot": min(ends["boot"], ends["route switch"])}
    durations, previous = {}, 0.0
    for phase in PHASES:
        end = max(ends[phase], previous)
        durations[phase] = end - previous
        previous = end
    return durations


class Watch:
    """Runs a check in a thread of its own, every `interval`, until it passes."""

    def __init__(
        self, name: str, client: Callable[[], httpx.Client], check: Check, interval: float
    ) -> None:
        self.client, self.check, self.interval = client, check, interval
        self.seen_at: float | None = None
        self.last = "(not checked yet)"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.client() as client:
            while not self._stop.is_set():
                try:
                    passed, self.last = self.check(client)
                except httpx.HTTPError as exc:
                    passed, self.last = False, f"{type(exc).__name__}: {exc}"
                if passed:
                    self.seen_at = time.monotonic()
                    return
                self._stop.wait(self.interval)

    def wait(self, deadline: float) -> float | None:
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return self.seen_at

    def cancel(self) -> None:
        """Stop checking; a request in flight may still finish, in a daemon thread."""
        self._stop.set()
        self._thread.join(1.0)


def dyno_up(app: str, version: int) -> Check:
    def check(client: httpx.Client) -> tuple[bool, str]:
        response = client.get(f"/apps/{app}/dynos")
        response.raise_for_status()
        dynos = response.json()
        up = any(
            d["type"] == "web" and d["release"]["version"] == version and d["state"] == "up"
            for d in dynos
        )
        return up, ", ".join(f"{d['name']} v{d['release']['version']} {d['state']}" for d in dynos)

    return check


def serves(expected: str) -> Check:
    def check(client: httpx.Client) -> tuple[bool, str]:
        response = client.get("/")
        return (
            response.status_code == 200 and expected in response.text,
            f"{response.status_code} {response.text[:120]!r}",
        )

    return check


def timed_push(user: User, repo: Path, app: str, expected: str) -> Timing:
    """Push repo's main to the app's remote and time it until the router answers `expected`."""
    ends: dict[str, float] = {}
    lines: list[str] = []
    watches: dict[str, Watch] = {}
    started = time.monotonic()
    push = subprocess.Popen(
        ["git", "push", "kapal", "main"],
        cwd=repo,
        env=user.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    too_long = threading.Timer(PUSH_TIMEOUT, push.kill)
    too_long.start()
    try:
        assert push.stderr is not None
        for raw in push.stderr:
            now = time.monotonic()
            for line in raw.decode(errors="replace").splitlines():
                lines.append(line)
                mark = line_mark(line)
                if mark is None or mark[0] in ends:
                    continue
                phase, version = mark
                ends[phase] = now - started
                if version is not None:
                    watches["boot"] = Watch(
                        "boot", user.api_client, dyno_up(app, version), API_POLL
                    )
                    watches["route switch"] = Watch(
                        "route", lambda: user.router_client(app), serves(expected), ROUTER_POLL
                    )
        status = push.wait()
        if status != 0:
            raise BenchError(f"git push to {app} exited {status}:\n" + "\n".join(lines))
        missing = [phase for phase in LINE_MARKS if phase not in ends]
        if missing:
            raise BenchError(
                f"git push to {app}: no line ended {', '.join(missing)}:\n" + "\n".join(lines)
            )
        deadline = time.monotonic() + SERVE_TIMEOUT
        for phase, watch in watches.items():
            seen = watch.wait(deadline)
            if seen is None:
                raise BenchError(f"{app}: no {phase} within {SERVE_TIMEOUT:g} s: {watch.last}")
            ends[phase] = seen - started
        return Timing(phases(ends))
    finally:
        too_long.cancel()
        if push.poll() is None:
            push.kill()
            push.wait()
        for watch in watches.values():
            watch.cancel()
