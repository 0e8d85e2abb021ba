"""Helpers for runtime integration tests: a store on a temporary SQLite file, slugs made on the
fly, and the agent's runtime running real processes with short timeouts and back-offs."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, select

from kapal.domain.logline import LogLine
from kapal.entrypoints.agent_store import AgentStore
from kapal.entrypoints.up import prepare_data_dir
from kapal.runtime.backoff import Backoff
from kapal.runtime.driver import Driver, PlainDriver
from kapal.runtime.dyno import Timing
from kapal.runtime.gateway import Gateway
from kapal.runtime.lifecycles import Limits
from kapal.runtime.lifetimes import Lifetimes
from kapal.runtime.reconcile import ReconcileLoop
from kapal.runtime.rendezvous import Rendezvous
from kapal.runtime.slugs import SlugCache
from kapal.runtime.supervisor import Supervisor
from kapal.settings import Settings
from kapal.store.db import Store
from kapal.store.models import App, Dyno, Formation, Release, Slug, User
from kapal.system_users import RunAs

T = TypeVar("T")

WEB = "python3 -m http.server $PORT --bind 127.0.0.1"


class Lines:
    """A log sink that keeps every line."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def append(self, line: LogLine) -> None:
        self.lines.append(line)

    def messages(self, dyno: str | None = None, source: str | None = None) -> list[str]:
        return [
            line.message
            for line in self.lines
            if (dyno is None or line.dyno == dyno) and (source is None or line.source == source)
        ]

    def dump(self) -> str:
        return "\n".join(line.format() for line in self.lines[-80:])


def write_slug(slugs_dir: Path, files: dict[str, str]) -> tuple[str, int]:
    """A slug of these files in `slugs_dir`, named as Kapal names them: (sha256, size)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    slugs_dir.mkdir(exist_ok=True)
    (slugs_dir / f"{digest}.tar.gz").write_bytes(data)
    return digest, len(data)


def add_demo_app(store: Store, uid: int | None = None, name: str = "demo") -> tuple[str, str]:
    """A user and their app `name` in `store`: (app id, user id)."""
    with store.session() as s:
        user = User(email=f"dev@{name}.example.com", password_hash="x")
        s.add(user)
        s.flush()
        app = App(name=name, owner_id=user.id, uid=uid)
        s.add(app)
        s.flush()
        return app.id, user.id


def open_settings(open_dir: Path) -> Settings:
    """A data directory laid out as `kapal up` makes it, where unprivileged dyno users can
    reach it (`open_dir`: pytest's own temporary directories are 0700)."""
    settings = Settings.from_env({"KAPAL_DATA_DIR": str(open_dir / "data")})
    prepare_data_dir(settings)
    return settings


@dataclass
class World:
    tmp: Path
    store: Store
    app_id: str = ""
    user_id: str = ""
    log: Lines = field(default_factory=Lines)

    @property
    def slugs_dir(self) -> Path:
        return self.tmp / "slugs"

    @property
    def dynos_dir(self) -> Path:
        return self.tmp / "dynos"

    def slug(self, process_types: dict[str, str], files: dict[str, str] | None = None) -> str:
        """A slug (no virtualenv: the commands use the system python3); returns its id."""
        digest, size = write_slug(self.slugs_dir, files or {})
        with self.store.session() as s:
            slug = Slug(
                app_id=self.app_id,
                checksum=f"SHA256:{digest}",
                size=size,
                process_types=process_types,
            )
            s.add(slug)
            s.flush()
            return slug.id

    def release(
        self,
        slug_id: str | None,
        config: dict[str, str] | None = None,
        release_command: str | None = None,
    ) -> int:
        with self.store.session() as s:
            version = (
                s.scalar(select(func.max(Release.version)).where(Release.app_id == self.app_id))
                or 0
            ) + 1
            s.add(
                Release(
                    app_id=self.app_id,
                    version=version,
                    description=f"Deploy v{version}",
                    slug_id=slug_id,
                    config=config or {},
                    status="pending" if release_command else "succeeded",
                    release_command=release_command,
                )
            )
            return version

    def scale(self, type_: str, quantity: int) -> None:
        with self.store.session() as s:
            row = s.scalar(
                select(Formation).where(Formation.app_id == self.app_id, Formation.type == type_)
            )
            if row is None:
                s.add(Formation(app_id=self.app_id, type=type_, quantity=quantity))
            else:
                row.quantity = quantity

    def restart(self, type_: str) -> None:
        with self.store.session() as s:
            row = s.scalar(
                select(Formation).where(Formation.app_id == self.app_id, Formation.type == type_)
            )
            assert row is not None
            row.restarted_at = datetime.now(UTC)

    def dynos(self) -> dict[str, Dyno]:
        with self.store.session() as s:
            return {d.name: d for d in s.scalars(select(Dyno).where(Dyno.app_id == self.app_id))}

    def release_row(self, version: int) -> Release:
        with self.store.session() as s:
            row = s.scalar(
                select(Release).where(Release.app_id == self.app_id, Release.version == version)
            )
            assert row is not None
            return row

    def one_off(
        self, name: str, command: str, version: int, attach_hash: str | None = None
    ) -> None:
        with self.store.session() as s:
            s.add(
                Dyno(
                    app_id=self.app_id,
                    name=name,
                    type="run",
                    command=command,
                    release_version=version,
                    state="starting",
                    attach=attach_hash is not None,
                    attach_hash=attach_hash,
                )
            )

    def delete_app(self) -> None:
        with self.store.session() as s:
            s.execute(delete(App).where(App.id == self.app_id))

    async def eventually(self, check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
        """Wait for `check()` to be truthy; on timeout the failure shows the app's log."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result:
                return result
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; log:\n{self.log.dump()}")
            await asyncio.sleep(0.05)


@dataclass
class Agent:
    loop: ReconcileLoop
    supervisor: Supervisor
    rendezvous: Rendezvous


FAST = Timing(boot_timeout=15.0, stop_grace=5.0, poll=0.02, drain=1.0, unroute=0.2, memory_poll=0.2)
FAST_BACKOFF = Backoff(first=0.3, factor=2.0, cap=1.2, stable_after=600)


@asynccontextmanager
async def running(
    world: World,
    *,
    timing: Timing = FAST,
    backoff: Backoff = FAST_BACKOFF,
    limits: Limits | None = None,
    lifetimes: Lifetimes | None = None,
    attach_ttl: float = 60.0,
    run_as: RunAs | None = None,
    store: AgentStore | None = None,
    driver: Driver | None = None,
    **rendezvous: Any,
) -> AsyncIterator[Agent]:
    """The agent's runtime (reconcile loop, supervisor, rendezvous on a free port); dynos run
    as `run_as` if given (the agent as root), else as the test's own user."""
    gateway = Gateway(store or AgentStore(world.store.url))
    slugs = SlugCache(world.slugs_dir, world.dynos_dir, run_as)
    supervisor = Supervisor(
        driver=driver or PlainDriver(run_as),
        slugs=slugs,
        log=world.log,
        gateway=gateway,
        timing=timing,
        backoff=backoff,
        limits=limits,
        lifetimes=lifetimes,
    )
    loop = ReconcileLoop(gateway, supervisor, world.log, interval=0.2, attach_ttl=attach_ttl)
    options = {"greeting_pause": 0.0, "hangup_grace": 2.0, "linger": 1.0, **rendezvous}
    point = Rendezvous(gateway, supervisor, host="127.0.0.1", port=0, **options)
    try:
        async with asyncio.TaskGroup() as tasks:
            await point.start()
            task = tasks.create_task(loop.run())
            try:
                yield Agent(loop, supervisor, point)
            finally:
                point.close()
                await loop.shutdown()
                task.cancel()
    finally:
        gateway.close()
