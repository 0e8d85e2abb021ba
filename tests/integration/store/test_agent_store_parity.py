"""The agent's store (plain SQL over the DB-API) and the ORM agree: each reads what the other
wrote, in the same formats, on SQLite and on the machine's PostgreSQL (127.0.0.1:5432, trust
auth; a scratch database per test)."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kapal.domain.hashes import hash_secret
from kapal.entrypoints.agent_store import AgentStore
from kapal.logs.sessions import SessionRequest
from kapal.runtime.state import DynoRow, FormationSpec, MemoryReading, ReleaseSpec
from kapal.store.db import Store
from kapal.store.models import (
    App,
    Dyno,
    Formation,
    LogSession,
    MemorySample,
    Release,
    Slug,
    User,
    now,
)

MB = 1 << 20
CONFIG = {"GREETING": "grüß dich", "QUOTE": 'say "hi"'}  # JSON with non-ASCII and quotes
PROCESS_TYPES = {"web": "gunicorn app:app", "worker": "python worker.py"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/k.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@dataclass
class Both:
    """The ORM's store and the agent's, on one database, with an app written by the ORM."""

    orm: Store
    agent: AgentStore
    app_id: str
    rows_changed: int = 0

    def dynos(self) -> dict[str, Dyno]:
        with self.orm.session() as s:
            return {d.name: d for d in s.scalars(select(Dyno).where(Dyno.app_id == self.app_id))}

    def release(self, version: int) -> Release:
        with self.orm.session() as s:
            found = s.scalar(
                select(Release).where(Release.app_id == self.app_id, Release.version == version)
            )
            assert found is not None
            return found


@pytest.fixture
def both(database_url: str) -> Iterator[Both]:
    orm = Store.open(database_url)
    with orm.session() as s:
        user = User(email="dev@example.com", password_hash="x")
        s.add(user)
        s.flush()
        app = App(name="demo", owner_id=user.id, uid=1_200_000_001)
        s.add(app)
        s.flush()
        app_id = app.id
    agent = AgentStore(orm.url)
    pair = Both(orm, agent, app_id)
    agent.on_rows_changed = lambda: setattr(pair, "rows_changed", pair.rows_changed + 1)
    try:
        yield pair
    finally:
        agent.close()
        orm.engine.dispose()


def deploy(both: Both) -> str:
    """v1 (succeeded), v2 (succeeded: current), v3 (pending, with a release command); a web
    formation; returns the slug's id."""
    with both.orm.session() as s:
        slug = Slug(app_id=both.app_id, checksum="SHA256:ab", size=1, process_types=PROCESS_TYPES)
        s.add(slug)
        s.flush()
        for version, status in ((1, "succeeded"), (2, "succeeded"), (3, "pending")):
            s.add(
                Release(
                    app_id=both.app_id,
                    version=version,
                    description=f"Deploy v{version}",
                    slug_id=slug.id,
                    config={**CONFIG, "V": str(version)},
                    status=status,
                    release_command="./migrate" if status == "pending" else None,
                )
            )
        s.add(Formation(app_id=both.app_id, type="web", quantity=2, size="standard-1x"))
        return slug.id


def spec(both: Both, version: int) -> ReleaseSpec:
    config = {**CONFIG, "V": str(version)}
    return ReleaseSpec(both.app_id, version, "SHA256:ab", config, PROCESS_TYPES, 1_200_000_001)


def row(name: str, state: str = "up", **changes: object) -> DynoRow:
    fields: dict[str, object] = {
        "type": name.split(".")[0],
        "command": "gunicorn app:app",
        "size": "standard-1x",
        "release_version": 2,
        "state": state,
        "port": 5001,
        "pid": 4242,
        "started_at": datetime.now(UTC).timestamp(),
        **changes,
    }
    app_id = str(fields.pop("app_id", ""))
    return DynoRow(app_id, name, **fields)  # type: ignore[arg-type]


def test_read_sees_what_the_orm_wrote(both: Both) -> None:
    deploy(both)
    restarted = datetime(2030, 1, 2, 3, 4, 5, 678901, UTC)
    with both.orm.session() as s:
        s.execute(update(Formation).values(restarted_at=restarted))
        s.add(Dyno(app_id=both.app_id, name="web.1", type="web", command="x", release_version=2))
        s.add(
            Dyno(
                app_id=both.app_id,
                name="run.1",
                type="run",
                command="bash",
                release_version=1,  # neither current nor pending: read for the one-off
                attach=True,
                attach_hash="h" * 64,
                restart_at=restarted,
            )
        )
    with both.orm.session() as s:  # as `ps:restart web.1` asks
        s.execute(update(Dyno).where(Dyno.name == "web.1").values(restart_at=restarted))

    desired = both.agent.read()

    app = desired.apps[both.app_id]
    assert app.release == spec(both, 2)
    assert app.formation == (FormationSpec("web", 2, "standard-1x", restarted.timestamp()),)
    assert app.restart_requests == {"web.1": restarted.timestamp()}
    assert [(p.release, p.command) for p in desired.pending] == [(spec(both, 3), "./migrate")]
    (one_off,) = desired.one_offs
    assert (one_off.name, one_off.command, one_off.release) == ("run.1", "bash", spec(both, 1))
    assert (one_off.attach, one_off.state, one_off.size) == (True, "starting", "eco")
    assert one_off.restart_at == restarted.timestamp()


def test_an_app_without_a_release_is_desired_with_none(both: Both) -> None:
    desired = both.agent.read()
    assert desired.apps[both.app_id].release is None
    assert (desired.pending, desired.one_offs) == ((), ())


def test_written_dynos_read_back_through_the_orm_and_unchanged_ones_are_not_rewritten(
    both: Both,
) -> None:
    deploy(both)
    before = now()
    web, worker = row("web.1", app_id=both.app_id), row("worker.1", "starting", app_id=both.app_id)
    gone_app = row("web.1", app_id=str(uuid.uuid4()))  # deleted meanwhile: skipped
    both.agent.write_dynos([web, worker, gone_app])

    dynos = both.dynos()
    assert sorted(dynos) == ["web.1", "worker.1"]
    stored = dynos["web.1"]
    assert uuid.UUID(stored.id).version == 4 and len(stored.id) == 36
    assert (stored.type, stored.command, stored.size, stored.release_version) == (
        *("web", "gunicorn app:app", "standard-1x", 2),
    )
    assert (stored.state, stored.port, stored.pid, stored.attach) == ("up", 5001, 4242, False)
    assert (stored.attach_hash, stored.exit_status, stored.restart_at) == (None, None, None)
    assert before <= stored.created_at <= stored.updated_at <= now()
    assert both.rows_changed == 1

    both.agent.write_dynos([web, worker])  # nothing changed: nothing written
    again = both.dynos()
    assert [again[n].updated_at for n in dynos] == [dynos[n].updated_at for n in dynos]
    assert both.rows_changed == 1

    crashed = row("worker.1", "crashed", app_id=both.app_id, pid=None, retry_at=2e9)
    both.agent.write_dynos([web, crashed])
    after = both.dynos()
    assert after["web.1"].updated_at == dynos["web.1"].updated_at
    assert after["worker.1"].updated_at > dynos["worker.1"].updated_at
    assert (after["worker.1"].state, after["worker.1"].pid) == ("crashed", None)
    assert after["worker.1"].restart_at == datetime.fromtimestamp(2e9, UTC)
    both.agent.write_dynos([web, crashed])  # the same retry time read back: equal
    assert both.dynos()["worker.1"].updated_at == after["worker.1"].updated_at

    both.agent.write_dynos([web])
    assert sorted(both.dynos()) == ["web.1"]
    assert both.rows_changed == 3


def test_a_restart_asked_meanwhile_is_kept_and_an_answered_one_cleared(both: Both) -> None:
    deploy(both)
    started = datetime.now(UTC).timestamp()
    web = row("web.1", app_id=both.app_id, started_at=started)
    both.agent.write_dynos([web])
    asked = datetime.fromtimestamp(started + 60, UTC)
    with both.orm.session() as s:
        s.execute(update(Dyno).values(restart_at=asked))
    both.agent.write_dynos([web])  # not answered yet: kept
    assert both.dynos()["web.1"].restart_at == asked
    both.agent.write_dynos([row("web.1", app_id=both.app_id, started_at=started + 61)])
    assert both.dynos()["web.1"].restart_at is None


def test_leftover_dynos_are_taken_over(both: Both) -> None:
    deploy(both)
    both.agent.write_dynos(
        [
            row("web.1", app_id=both.app_id),
            row("release.3", app_id=both.app_id, release_version=3),
            row("worker.1", "crashed", app_id=both.app_id, pid=None),
        ]
    )
    written = both.dynos()

    found = both.agent.leftover_dynos(2e9)

    assert {d.name: d.started_at for d in found} == {
        n: written[n].updated_at.timestamp() for n in ("web.1", "release.3")
    }
    dynos = both.dynos()
    assert sorted(dynos) == ["web.1"]  # the release phase's row and the crashed one removed
    assert dynos["web.1"].restart_at == datetime.fromtimestamp(2e9, UTC)
    assert dynos["web.1"].updated_at > written["web.1"].updated_at
    both.agent.leftover_dynos(2e9)  # asked already: not rewritten
    assert both.dynos()["web.1"].updated_at == dynos["web.1"].updated_at


def test_a_release_phase_outcome_is_recorded(both: Both) -> None:
    deploy(both)
    before = both.release(3)
    both.agent.finish_release(both.app_id, 3, False, "migrate: failed\n")
    both.agent.finish_release(both.app_id, 2, False, "not pending: untouched")
    after = both.release(3)
    assert (after.status, after.output) == ("failed", "migrate: failed\n")
    assert after.updated_at > before.updated_at
    assert after.config == {**CONFIG, "V": "3"}
    assert (both.release(2).status, both.release(2).output) == ("succeeded", "")


def test_one_offs_are_claimed_started_finished_and_expired(both: Both) -> None:
    deploy(both)
    with both.orm.session() as s:
        for name, attach_hash in (("run.1", "a" * 64), ("run.2", "b" * 64), ("run.3", None)):
            s.add(
                Dyno(
                    app_id=both.app_id,
                    name=name,
                    type="run",
                    command="bash",
                    release_version=2,
                    attach=attach_hash is not None,
                    attach_hash=attach_hash,
                )
            )
    created = both.dynos()

    claimed = both.agent.claim_attach("a" * 64)
    assert claimed is not None
    assert (claimed.name, claimed.state, claimed.attach, claimed.release) == (
        *("run.1", "up", True, spec(both, 2)),
    )
    assert both.agent.claim_attach("a" * 64) is None  # the secret works once
    assert both.dynos()["run.1"].state == "up"

    both.agent.one_off_started(both.app_id, "run.3", 999)
    started = both.dynos()["run.3"]
    assert (started.state, started.pid) == ("up", 999)
    assert started.updated_at > created["run.3"].updated_at
    both.agent.one_off_started(both.app_id, "run.3", 999)  # nothing changed: not written
    assert both.dynos()["run.3"].updated_at == started.updated_at

    both.agent.one_off_finished(both.app_id, "run.3")
    assert "run.3" not in both.dynos()

    assert both.agent.expire_unattached(created["run.2"].created_at.timestamp()) == []
    expired = both.agent.expire_unattached(now().timestamp() + 1)
    assert expired == [(both.app_id, "run.2")]  # run.1 was claimed: stays
    assert sorted(both.dynos()) == ["run.1"]


def test_memory_samples_are_recorded_and_forgotten(both: Both) -> None:
    keep = timedelta(hours=24)
    both.agent.record_memory([MemoryReading(both.app_id, "web.1", 300 * MB, 512 * MB)], keep)
    with both.orm.session() as s:
        s.execute(update(MemorySample).values(at=now() - timedelta(hours=25)))
    before = now()
    readings = [
        MemoryReading(both.app_id, "web.1", 100 * MB + MB // 2, 512 * MB),
        MemoryReading(both.app_id, "worker.1", 700 * MB, 1024 * MB),
        MemoryReading(str(uuid.uuid4()), "web.1", MB, 512 * MB),  # deleted meanwhile: skipped
    ]
    both.agent.record_memory(readings, keep)
    with both.orm.session() as s:
        samples = s.scalars(select(MemorySample).order_by(MemorySample.id)).all()
    assert [(m.dyno, m.memory_mb, m.quota_mb) for m in samples] == [
        ("web.1", 100.5, 512),
        ("worker.1", 700.0, 1024),
    ]
    assert samples[0].id < samples[1].id
    assert all(before <= m.at <= now() for m in samples)


def test_log_sessions_are_found_by_secret_until_they_expire(both: Both) -> None:
    with both.orm.session() as s:
        for secret, expires in (("live", now() + timedelta(minutes=5)), ("old", now())):
            s.add(
                LogSession(
                    id_hash=hash_secret(secret),
                    app_id=both.app_id,
                    dyno="web.1",
                    source="app",
                    lines=7,
                    tail=True,
                    expires_at=expires,
                )
            )
    assert both.agent.log_session("live") == SessionRequest(both.app_id, "web.1", "app", 7, True)
    assert both.agent.log_session("old") is None
    assert both.agent.log_session("unknown") is None


def test_timestamps_are_stored_as_the_orm_stores_them(both: Both) -> None:
    """Same text format on SQLite (what the ORM's reads and comparisons rely on)."""
    deploy(both)
    both.agent.write_dynos([row("web.1", app_id=both.app_id, retry_at=2e9)])
    both.agent.record_memory([MemoryReading(both.app_id, "web.1", MB, MB)], timedelta(hours=1))
    both.agent.finish_release(both.app_id, 3, True, "")
    if not both.agent.db.sqlite:
        return  # PostgreSQL: `timestamp without time zone` either way; read back above
    path = both.orm.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        stamps = raw.execute(
            "SELECT restart_at, created_at, updated_at FROM dynos"
            " UNION ALL SELECT at, at, at FROM memory_samples"
            " UNION ALL SELECT created_at, created_at, updated_at FROM releases"
        ).fetchall()
    raw.close()
    pattern = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
    assert all(pattern.fullmatch(value) for stamp in stamps for value in stamp), stamps


def test_a_snapshot_never_waits_for_a_writer_and_cascades_hold(both: Both) -> None:
    deploy(both)
    both.agent.write_dynos([row("web.1", app_id=both.app_id)])
    both.agent.record_memory([MemoryReading(both.app_id, "web.1", MB, MB)], timedelta(hours=1))
    with both.orm.session() as s:  # the write lock held (SQLite: BEGIN IMMEDIATE)
        s.execute(update(App).values(maintenance=True))
        assert both.agent.read().apps[both.app_id].release == spec(both, 2)
    with both.agent.db.write() as tx:  # foreign keys on: the app's rows go with it
        tx.run("DELETE FROM apps WHERE id = ?", both.app_id)
    with both.orm.session() as s:
        assert s.scalars(select(Dyno)).all() == []
        assert s.scalars(select(MemorySample)).all() == []
        assert s.scalars(select(Release)).all() == []
