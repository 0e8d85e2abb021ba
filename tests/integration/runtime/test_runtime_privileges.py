"""As root, dynos run as the unprivileged kapal-dyno user: they can write their own HOME but
cannot read the state database, the secrets or the platform's environment, list other apps,
or write lines into the log hub's socket."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.runtime.harness import World, add_demo_app, open_settings, running

from kapal.logs.hub import LogHub
from kapal.logs.ingest import LogIngest
from kapal.settings import Settings
from kapal.store.db import Store
from kapal.system_users import DYNO_USER, RunAs

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="dynos drop privileges only when the agent is root; this test is not running as root",
)


@pytest.fixture
def settings(open_dir: Path) -> Settings:
    return open_settings(open_dir)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    store = Store.open(settings.database_url)
    app_id, user_id = add_demo_app(store)
    yield World(settings.data_dir, store, app_id, user_id)
    store.engine.dispose()


def probe(settings: Settings) -> str:
    """Shell lines that try what a dyno must not manage, and say what happened."""
    db = settings.data_dir / "state" / "kapal.db"
    send = (
        "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
        "s.sendto(b'{}', sys.argv[1])"
    )
    tries = {
        "db": f"cat {db}",
        "secrets": f"cat {settings.secrets_dir}/*",
        "environ": f"cat /proc/{os.getpid()}/environ",
        "log": f'python3 -c "{send}" {settings.log_socket}',
        "listing": f"ls {settings.dynos_dir}",
        "slugs": f"ls {settings.slugs_dir}",
    }
    lines = ['echo "uid=$(id -u) groups=$(id -G)"']
    lines += [
        f"{cmd} >/dev/null 2>&1 && echo 'got {name}' || echo 'no {name}'"
        for name, cmd in tries.items()
    ]
    lines.append('echo hello > "$HOME/written" && echo "home writable"')
    return "; ".join(lines)


EXPECTED = [
    "no db",
    "no secrets",
    "no environ",
    "no log",
    "no listing",
    "no slugs",
    "home writable",
]


def test_dynos_cannot_reach_the_platforms_secrets(settings: Settings, world: World) -> None:
    dyno_user = RunAs.system(DYNO_USER)
    (settings.secrets_dir / "postgres-admin").write_text("s3cret\n")
    (settings.secrets_dir / "postgres-admin").chmod(0o600)
    command = probe(settings)
    version = world.release(world.slug({"worker": f"{command}; exec sleep 600"}))
    world.scale("worker", 1)
    world.one_off("run.1", command, version)
    hub = LogHub()
    ingest = LogIngest(hub, settings.log_socket)

    async def scenario() -> None:
        await ingest.start()
        try:
            async with running(world, run_as=dyno_user):
                await world.eventually(
                    lambda: (
                        "home writable" in world.log.messages("worker.1", "app")
                        and "run.1" not in world.dynos()
                    ),
                    "the probes of worker.1 and run.1",
                )
        finally:
            ingest.close()

    sock = settings.log_socket
    asyncio.run(scenario())
    expected = [f"uid={dyno_user.uid} groups={dyno_user.gid}", *EXPECTED]
    assert world.log.messages("run.1", "app") == expected, world.log.dump()
    assert world.log.messages("worker.1", "app") == expected, world.log.dump()
    assert ingest.received == 0 and ingest.malformed == 0
    assert not sock.exists()  # closed; while it ran, it was root's alone:
    home = settings.dynos_dir / world.app_id / f"v{version}"
    assert (home / "written").read_text() == "hello\n"
    assert (home / "written").stat().st_uid == dyno_user.uid
    assert home.stat().st_uid == dyno_user.uid
    for path in (settings.dynos_dir, settings.dynos_dir / world.app_id):
        assert path.stat().st_uid == 0 and stat.S_IMODE(path.stat().st_mode) == 0o711
    for path in (settings.run_dir, settings.secrets_dir, settings.data_dir / "state"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_the_log_socket_is_roots_alone(settings: Settings) -> None:
    ingest = LogIngest(LogHub(), settings.log_socket)

    async def scenario() -> os.stat_result:
        await ingest.start()
        try:
            return settings.log_socket.stat()
        finally:
            ingest.close()

    info = asyncio.run(scenario())
    assert stat.S_ISSOCK(info.st_mode)
    assert info.st_uid == 0
    assert stat.S_IMODE(info.st_mode) == 0o600
