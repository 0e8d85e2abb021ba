"""Dynos in their jails (bubblewrap and unshare), each app as its own uid, each dyno in its own
cgroup: what one app's dyno can see and do must fail if isolation breaks.

The agent's runtime runs here with the JailedDriver, as `kapal up` runs it as root, on a data
directory laid out by `prepare_data_dir`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.runtime.harness import World, add_demo_app, open_settings, running

from kapal.runtime.jailed import JailedDriver
from kapal.sandbox.cgroups import Layout
from kapal.sandbox.jail import Bubblewrap, Jail, Unshare
from kapal.settings import Settings
from kapal.store.db import Store
from kapal.system_users import RunAs

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="dynos are jailed only when the agent is root"
)

UID_A, UID_B = 1_299_990_001, 1_299_990_002
SECRET = {"SECRET_B": "only-for-b"}
JAILS: dict[str, Jail] = {"bubblewrap": Bubblewrap(), "unshare": Unshare()}


@pytest.fixture
def settings(open_dir: Path) -> Iterator[Settings]:
    settings = open_settings(open_dir)
    umask = os.umask(0o077)  # the agent's: nothing it makes may depend on a looser one
    try:
        yield settings
    finally:
        os.umask(umask)


@pytest.fixture
def apps(settings: Settings) -> Iterator[tuple[World, World]]:
    """Two apps of one user, A and B, with their own uids."""
    store = Store.open(settings.database_url)
    worlds = []
    for name, uid in (("app-a", UID_A), ("app-b", UID_B)):
        app_id, user_id = add_demo_app(store, uid, name)
        worlds.append(World(settings.data_dir, store, app_id, user_id))
    yield worlds[0], worlds[1]
    store.engine.dispose()


@pytest.fixture(params=sorted(JAILS))
def driver(request: pytest.FixtureRequest, settings: Settings) -> Iterator[JailedDriver]:
    layout = Layout.detect(f"test-{os.getpid()}-{request.param}")
    driver = JailedDriver(
        JAILS[request.param],
        layout,
        settings.sandbox_dir,
        RunAs.system(),
        memory_mb={"eco": 48},
    )
    yield driver
    driver.close()


def deploy(
    world: World,
    command: str,
    files: dict[str, str] | None = None,
    config: dict[str, str] | None = None,
) -> None:
    world.release(world.slug({"worker": command}, files), config)
    world.scale("worker", 1)


def said(world: World, prefix: str) -> list[str]:
    return [
        m.removeprefix(prefix)
        for m in world.log.messages("worker.1", "app")
        if m.startswith(prefix)
    ]


def processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(entry.path, "status").read_text()
            except OSError:
                continue
            if f"\nUid:\t{uid}\t" in status:
                found.append(int(entry.name))
    return found


PROBE = """
echo "uid=$(id -u) user=$(id -un) home=$HOME pwd=$PWD host=$(hostname)"
echo "slug=$(cat /app/hello.txt)"
echo changed > /app/hello.txt && echo "write-app=$(cat /app/hello.txt)"
touch /usr/kapal-probe 2>/dev/null && echo "write-usr=yes" || echo "write-usr=no"
echo "pids=$(ls /proc | grep -c '^[0-9]')"
for path in @DATA@ @DB@ @RELEASE_B@; do test -e "$path" && echo "sees=$path"; done
echo "kill-b=$(kill -0 @PID_B@ 2>/dev/null && echo yes || echo no)"
echo "environ-b=$(cat /proc/@PID_B@/environ 2>/dev/null | tr '\\0' ' ' | grep -c SECRET_B)"
echo "tmp-b=$(ls /tmp)"
python3 -c "
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    s.bind(('127.0.0.1', @PORT@)); print('bind-platform-port=yes')
except OSError:
    print('bind-platform-port=no')
"
echo done
sleep 1000
"""


def test_apps_are_isolated_from_each_other_and_the_platform(
    apps: tuple[World, World], driver: JailedDriver, settings: Settings
) -> None:
    a, b = apps
    b.log = a.log  # one log for both apps: the test reads each app's lines from it
    platform = socket.socket()
    platform.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    platform.bind(("127.0.0.1", 0))
    platform.listen()
    port = platform.getsockname()[1]

    async def scenario() -> None:
        async with running(a, driver=driver, run_as=driver.default_user):
            deploy(b, "echo b-secret > /tmp/secret-b; echo b-up; sleep 1000", None, SECRET)
            await a.eventually(lambda: "b-up" in a.log.messages("worker.1", "app"), "B up")
            pid_b = max(processes_of(UID_B))
            release_b = settings.dynos_dir / b.app_id / "v1"
            probe = (
                PROBE.replace("@DATA@", str(settings.data_dir))
                .replace("@DB@", settings.database_url.removeprefix("sqlite:///"))
                .replace("@RELEASE_B@", str(release_b))
                .replace("@PID_B@", str(pid_b))
                .replace("@PORT@", str(port))
            )
            deploy(a, probe, {"hello.txt": "from the slug"})
            await a.eventually(lambda: "done" in a.log.messages("worker.1", "app"), "the probe")
            release_a = settings.dynos_dir / a.app_id / "v1"
            assert (release_a / "hello.txt").read_text() == "from the slug"  # only A's view changed

    try:
        asyncio.run(scenario())
    finally:
        platform.close()
    lines = [m for m in a.log.messages("worker.1", "app") if "=" in m]
    facts = dict(line.split("=", 1) for line in lines if line.split("=", 1)[0] != "uid")
    first = next(line for line in lines if line.startswith("uid="))
    assert first.startswith(f"uid={UID_A} user=dyno home=/app pwd=/app host=dyno-worker-1")
    assert facts["slug"] == "from the slug", a.log.dump()
    assert facts.get("write-app") == "changed", a.log.dump()
    assert facts["write-usr"] == "no"
    assert int(facts["pids"]) < 10  # its own pid namespace: a handful of processes
    assert "sees" not in facts, lines  # no data dir, state database or other app's slug
    assert facts["kill-b"] == "no"
    assert facts["environ-b"] == "0"
    assert "secret-b" not in facts["tmp-b"]
    assert facts["bind-platform-port"] == "no"


def test_whole_tree_is_stopped_through_the_cgroup(
    apps: tuple[World, World], driver: JailedDriver
) -> None:
    """A command that daemonises and exits: its children are killed with the dyno."""
    a, _ = apps

    async def scenario() -> None:
        async with running(a, driver=driver, run_as=driver.default_user):
            deploy(a, "(setsid sleep 1001 &); (sleep 1002 &); echo started; sleep 1000")
            await a.eventually(lambda: "started" in a.log.messages("worker.1", "app"), "start")
            await a.eventually(lambda: len(processes_of(UID_A)) >= 3, "the daemons")
            a.scale("worker", 0)
            await a.eventually(lambda: not processes_of(UID_A), "every process gone", 15)

    asyncio.run(scenario())
    assert "Process exited with status 143" in a.log.messages("worker.1", "kapal")


def test_fork_bomb_hits_the_pids_limit(apps: tuple[World, World], driver: JailedDriver) -> None:
    a, _ = apps
    bomb = "echo bombing; bomb() { bomb | bomb & }; bomb; sleep 2; echo still-here; sleep 1000"

    async def scenario() -> None:
        async with running(a, driver=driver, run_as=driver.default_user):
            deploy(a, bomb)
            await a.eventually(lambda: "bombing" in a.log.messages("worker.1", "app"), "start")
            await asyncio.sleep(1)
            assert len(processes_of(UID_A)) <= 256 + 8  # the size's limit (and the jail's own)
            a.scale("worker", 0)
            await a.eventually(lambda: not processes_of(UID_A), "every process gone", 20)

    asyncio.run(scenario())


HOG = (
    'python3 -c "import time\nblocks = []\nwhile True:\n'
    "    blocks.append(bytearray(8 << 20)); print('held', len(blocks) * 8, flush=True); "
    'time.sleep(0.05)"'
)


def test_memory_hog_gets_r14_then_r15_and_is_restarted(
    apps: tuple[World, World], driver: JailedDriver
) -> None:
    """48 MB quota (eco, overridden): R14 above it, the kernel stops it at 96 MB: R15."""
    a, _ = apps

    async def scenario() -> None:
        async with running(a, driver=driver, run_as=driver.default_user):
            deploy(a, HOG)
            await a.eventually(
                lambda: (
                    "Error R15 (Memory quota vastly exceeded)"
                    in a.log.messages("worker.1", "kapal")
                ),
                "R15",
            )
            await a.eventually(
                lambda: (
                    a.log.messages("worker.1", "kapal").count(
                        "Starting process with command `" + HOG + "`"
                    )
                    >= 2
                ),
                "a restart",
            )

    asyncio.run(scenario())
    platform = a.log.messages("worker.1", "kapal")
    assert "Error R14 (Memory quota exceeded)" in platform
    r14 = platform.index("Error R14 (Memory quota exceeded)")
    assert platform[r14 - 1].startswith("Process running mem=")
    assert "State changed from up to crashed" in platform


def test_command_that_does_not_exist_crashes_with_the_shells_error(
    apps: tuple[World, World], driver: JailedDriver
) -> None:
    a, _ = apps

    async def scenario() -> None:
        async with running(a, driver=driver, run_as=driver.default_user):
            deploy(a, "no-such-command --flag")
            await a.eventually(
                lambda: "State changed from up to crashed" in a.log.messages("worker.1", "kapal"),
                "the crash",
            )

    asyncio.run(scenario())
    assert any("no-such-command: command not found" in m for m in a.log.messages("worker.1", "app"))
    assert "Process exited with status 127" in a.log.messages("worker.1", "kapal")


def test_detection_finds_bubblewrap_with_the_agents_umask(settings: Settings) -> None:
    from kapal.sandbox.jail import detect

    assert detect(None, settings.sandbox_dir / "trial", UID_A, UID_A).name == "bubblewrap"


HIJACK = "#!/bin/sh\necho ESCAPED-$(basename $0)\n"


def test_config_and_slug_cannot_choose_the_jails_own_programs(
    apps: tuple[World, World], driver: JailedDriver, settings: Settings
) -> None:
    """PATH and LD_PRELOAD are the app's config vars, and its slug may hold programs named
    bwrap, unshare or tini: none of them may run in place of the jail's own (they would run
    before the jail exists). Inside, the dyno has no capabilities and gains none."""
    a, _ = apps
    fakes = settings.data_dir / "fakes"
    fakes.mkdir(mode=0o755)
    fakes.chmod(0o755)
    for name in ("bwrap", "unshare", "tini", "setpriv"):
        (fakes / name).write_text(HIJACK)
        (fakes / name).chmod(0o755)
    probe = (
        'echo "jailed $(id -u)"; grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status; '
        "touch /kapal-probe 2>/dev/null && echo root-writable; "
        "unshare -Ur true 2>/dev/null && echo nested-userns; sleep 1000"
    )
    slug_files = {f".venv/bin/{name}": HIJACK for name in ("bwrap", "unshare", "tini")}
    config = {"PATH": f"{fakes}:/app/.venv/bin:/usr/bin:/bin", "LD_PRELOAD": "/nonexistent.so"}

    async def scenario() -> None:
        async with running(a, driver=driver, run_as=driver.default_user):
            deploy(a, probe, slug_files, config)
            await a.eventually(
                lambda: any(m.startswith("NoNewPrivs") for m in a.log.messages("worker.1", "app")),
                "the probe",
            )
            await asyncio.sleep(0.5)

    asyncio.run(scenario())
    lines = a.log.messages("worker.1", "app")
    assert not any("ESCAPED" in line for line in lines), lines
    assert f"jailed {UID_A}" in lines
    status = dict(line.split(":\t") for line in lines if ":\t" in line)
    assert status == {"CapEff": "0000000000000000", "CapBnd": status["CapBnd"], "NoNewPrivs": "1"}
    assert "root-writable" not in lines
    if driver.name == "bubblewrap":
        assert status["CapBnd"] == "0000000000000000"
        assert "nested-userns" not in lines
