"""The DynoBackend conformance suite: what any backend must do, checked only through the
protocol (kapal.runtime.backend) with real processes and sockets. A new backend (Kubernetes,
say) adds itself to BACKENDS and must pass all of it.

Today's backends are the local Supervisor with each driver: plain processes, and, as root, the
bubblewrap and unshare jails with the app's own uid.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from tests.integration.runtime.harness import FAST, FAST_BACKOFF, Lines, write_slug

from kapal.runtime.backend import DynoBackend
from kapal.runtime.driver import Driver, PlainDriver, Process
from kapal.runtime.dyno import Dyno
from kapal.runtime.gateway import Gateway
from kapal.runtime.jailed import JailedDriver
from kapal.runtime.slugs import SlugCache
from kapal.runtime.state import (
    Desired,
    DesiredApp,
    DynoRow,
    FormationSpec,
    OneOffSpec,
    PendingRelease,
    ReleaseSpec,
)
from kapal.runtime.supervisor import Supervisor
from kapal.sandbox.cgroups import Layout
from kapal.sandbox.jail import Bubblewrap, Unshare
from kapal.system_users import RunAs, unprivileged

T = TypeVar("T")
APP = "app-conformance"
UID = 1_299_990_101
WEB = "python3 -m http.server $PORT --bind 127.0.0.1"
BACKENDS = ["plain", "bubblewrap", "unshare"] if os.geteuid() == 0 else ["plain"]


class Outcomes:
    """The StateStore calls a backend makes on its own (release phases, one-offs)."""

    def __init__(self) -> None:
        self.releases: dict[int, tuple[bool, str]] = {}
        self.finished: list[str] = []

    def finish_release(self, app_id: str, version: int, succeeded: bool, output: str) -> None:
        self.releases[version] = (succeeded, output)

    def one_off_started(self, app_id: str, name: str, pid: int | None) -> None:
        pass

    def one_off_finished(self, app_id: str, name: str) -> None:
        self.finished.append(name)


class Place:
    """A backend under test, its slugs, log and outcomes."""

    def __init__(self, backend: DynoBackend, slugs: Path, log: Lines, outcomes: Outcomes) -> None:
        self.backend = backend
        self.slugs = slugs
        self.log = log
        self.outcomes = outcomes
        self.uid: int | None = UID

    def release(self, version: int, types: dict[str, str], files: dict[str, str]) -> ReleaseSpec:
        digest, _ = write_slug(self.slugs, files)
        return ReleaseSpec(APP, version, f"SHA256:{digest}", {}, types, self.uid)

    def converge(
        self,
        release: ReleaseSpec | None,
        *formation: FormationSpec,
        pending: tuple[PendingRelease, ...] = (),
        one_offs: tuple[OneOffSpec, ...] = (),
    ) -> None:
        desired = Desired({APP: DesiredApp(APP, release, formation)}, pending, one_offs)
        self.backend.converge(desired, time.time())

    def rows(self, state: str | None = None) -> list[DynoRow]:
        return [r for r in self.backend.rows() if state is None or r.state == state]

    async def eventually(self, check: Callable[[], T], what: str, timeout: float = 20) -> T:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = check()
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; log:\n{self.log.dump()}")
            await asyncio.sleep(0.05)


def driver_for(name: str, sandbox: Path) -> tuple[Driver, RunAs | None]:
    user = unprivileged()
    if name == "plain":
        return PlainDriver(user), user
    assert user is not None
    jail = Bubblewrap() if name == "bubblewrap" else Unshare()
    layout = Layout.detect(f"conformance-{os.getpid()}-{name}")
    return JailedDriver(jail, layout, sandbox, user), user


@pytest.fixture(params=BACKENDS)
def root(request: pytest.FixtureRequest, open_dir: Path) -> tuple[str, Path]:
    return request.param, open_dir


@asynccontextmanager
async def backend(root: tuple[str, Path]) -> AsyncIterator[Place]:
    name, path = root
    (path / "slugs").mkdir()
    driver, user = driver_for(name, path / "sandbox")
    outcomes = Outcomes()
    log = Lines()
    gateway = Gateway(outcomes)  # type: ignore[arg-type]
    supervisor = Supervisor(
        driver=driver,
        slugs=SlugCache(path / "slugs", path / "dynos", user),
        log=log,
        gateway=gateway,
        timing=FAST,
        backoff=FAST_BACKOFF,
    )
    place = Place(supervisor, path / "slugs", log, outcomes)
    if name == "plain":
        place.uid = None  # plain processes run as the shared user (or ours, without root)
    task = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.01)  # run() has started: dynos may be started
    try:
        yield place
    finally:
        await asyncio.gather(*(d.wait_done() for d in supervisor.begin_shutdown()))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gateway.close()
        driver.close()


def answers(port: int | None) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_formation_comes_up_routable_and_scales_to_zero(root: tuple[str, Path]) -> None:
    async def scenario() -> None:
        async with backend(root) as place:
            v1 = place.release(1, {"web": WEB}, {"index.html": "v1"})
            place.converge(v1, FormationSpec("web", 2))
            up = await place.eventually(
                lambda: len(place.rows("up")) == 2 and place.rows("up"), "2 up"
            )
            assert sorted(r.name for r in up) == ["web.1", "web.2"]
            ports = [r.port for r in up]
            assert len(set(ports)) == 2
            assert all(await asyncio.gather(*(asyncio.to_thread(answers, p) for p in ports)))
            place.converge(v1, FormationSpec("web", 0))
            await place.eventually(lambda: not place.rows(), "no rows")
            place.backend.unrouted()
            for port in ports:
                await place.eventually(lambda port=port: not answers(port), f"port {port} closed")  # type: ignore[misc]

    asyncio.run(scenario())


def test_a_new_release_replaces_the_dynos(root: tuple[str, Path]) -> None:
    async def scenario() -> None:
        async with backend(root) as place:
            v1 = place.release(1, {"web": WEB}, {"index.html": "v1"})
            place.converge(v1, FormationSpec("web", 1))
            await place.eventually(lambda: place.rows("up"), "v1 up")
            v2 = place.release(2, {"web": WEB}, {"index.html": "v2"})

            def v2_up() -> bool:
                place.converge(v2, FormationSpec("web", 1))
                place.backend.unrouted()
                rows = place.rows()
                return len(rows) == 1 and rows[0].release_version == 2 and rows[0].state == "up"

            await place.eventually(v2_up, "v2 up alone")
            port = place.rows()[0].port
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html").read()
            )
            assert body == b"v2"

    asyncio.run(scenario())


def test_a_crashed_dyno_is_restarted(root: tuple[str, Path]) -> None:
    async def scenario() -> None:
        async with backend(root) as place:
            v1 = place.release(1, {"worker": "echo working; sleep 0.3; exit 3"}, {})

            def restarted() -> bool:
                place.converge(v1, FormationSpec("worker", 1))
                return place.log.messages("worker.1", "app").count("working") >= 2

            await place.eventually(restarted, "a second start")
            assert "Process exited with status 3" in place.log.messages("worker.1", "kapal")

    asyncio.run(scenario())


def test_release_phase_reports_its_outcome(root: tuple[str, Path]) -> None:
    async def scenario() -> None:
        async with backend(root) as place:
            v1 = place.release(1, {"release": "echo migrating"}, {})
            v2 = place.release(2, {"release": "echo broken >&2; exit 1"}, {})
            place.converge(None, pending=(PendingRelease(v1, "echo migrating"),))
            await place.eventually(lambda: 1 in place.outcomes.releases, "v1's outcome")
            place.converge(None, pending=(PendingRelease(v2, "echo broken >&2; exit 1"),))
            await place.eventually(lambda: 2 in place.outcomes.releases, "v2's outcome")
            assert place.outcomes.releases[1] == (True, "migrating\n")
            assert place.outcomes.releases[2] == (False, "broken\n")

    asyncio.run(scenario())


def test_one_offs_detached_and_attached(root: tuple[str, Path]) -> None:
    async def scenario() -> None:
        async with backend(root) as place:
            v1 = place.release(1, {}, {"hello.txt": "hello from the slug"})
            detached = OneOffSpec(APP, "run.1", "cat hello.txt; echo; echo $DYNO", v1)
            place.converge(v1, one_offs=(detached,))
            await place.eventually(lambda: "run.1" in place.outcomes.finished, "run.1 done")
            assert place.log.messages("run.1", "app") == ["hello from the slug", "run.1"]

            output = bytearray()

            def make_io(dyno: Dyno) -> Callable[[Process], object]:
                async def io(process: Process) -> None:
                    assert process.stdout is not None
                    output.extend(await process.stdout.read())

                return io

            attached = OneOffSpec(APP, "run.2", "echo attached; exit 4", v1, attach=True)
            await asyncio.wait_for(place.backend.attach(attached, make_io), 20)  # type: ignore[arg-type]
            assert output.decode().strip() == "attached"
            assert "Process exited with status 4" in place.log.messages("run.2", "kapal")

    asyncio.run(scenario())


def test_shutdown_stops_every_dyno(root: tuple[str, Path]) -> None:
    async def scenario() -> None:
        async with backend(root) as place:
            v1 = place.release(1, {"web": WEB, "worker": "trap '' TERM; sleep 1000"}, {})
            place.converge(v1, FormationSpec("web", 1), FormationSpec("worker", 1))
            await place.eventually(lambda: len(place.rows("up")) == 2, "both up")
            port = next(r.port for r in place.rows() if r.type == "web")
            stopping = place.backend.begin_shutdown()
            await asyncio.wait_for(asyncio.gather(*(s.wait_done() for s in stopping)), 20)
            assert not answers(port)
            worker = place.log.messages("worker.1", "kapal")
            assert "Stopping remaining processes with SIGKILL" in worker  # ignored SIGTERM: R12

    asyncio.run(scenario())
