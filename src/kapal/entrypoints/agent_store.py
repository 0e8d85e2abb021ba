"""`AgentStore`: the runtime's `StateStore` (plus memory samples and log sessions) in plain SQL
over the DB-API (kapal.store.dbapi), so that the agent never imports SQLAlchemy.

It reads and writes the tables of kapal.store.models in the formats the ORM uses; the parity
tests (tests/integration/store/test_agent_store_parity.py) check both against each other on
SQLite and PostgreSQL. The runtime and the store may not import each other, so this adapter
lives with the agent's entry point.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from kapal.domain.eco import month_of
from kapal.domain.hashes import hash_secret
from kapal.logs.drains import DrainSpec
from kapal.logs.sessions import SessionRequest
from kapal.runtime.state import (
    Desired,
    DesiredApp,
    DynoRow,
    FormationSpec,
    MemoryReading,
    OneOffSpec,
    PendingRelease,
    ReleaseSpec,
)
from kapal.store.dbapi import Database, Transaction, json_value, moment, moment_or_none
from kapal.store.eco_quota import exhausted_owners

# A release with what its dynos need: the slug's checksum and process types, the app's uid.
RELEASES = """
SELECT r.app_id, r.version, r.release_command, r.config, s.checksum, s.process_types, a.uid
FROM releases r LEFT JOIN slugs s ON s.id = r.slug_id LEFT JOIN apps a ON a.id = r.app_id
"""
CURRENT = """
WHERE r.status = 'succeeded' AND r.version = (
    SELECT max(n.version) FROM releases n WHERE n.app_id = r.app_id AND n.status = 'succeeded'
)
"""
PENDING = """
WHERE r.status = 'pending' AND r.release_command IS NOT NULL ORDER BY r.app_id, r.version
"""
ONE_OFFS = """
SELECT app_id, release_version, name, command, size, attach, state, restart_at FROM dynos
"""
AGENT_DYNOS = """
SELECT id, app_id, name, type, command, size, release_version, state, port, pid, restart_at,
    updated_at
FROM dynos
"""
AGENT_DYNO_COLUMNS = (
    *("id", "app_id", "name", "type", "command", "size", "release_version", "state", "port"),
    *("pid", "restart_at", "updated_at"),
)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _now() -> datetime:
    return datetime.now(UTC)  # kapal.store.models.now


class AgentStore:
    """The runtime's StateStore over the database at `url`."""

    def __init__(
        self,
        url: str,
        on_rows_changed: Callable[[], None] = lambda: None,
        *,
        eco_quota: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = Database(url)
        self.on_rows_changed = on_rows_changed
        self.eco_quota = eco_quota  # eco dyno seconds per account per month; None: no limit
        self.clock = clock
        self._owners: dict[str, str] = {}  # app id -> owner id, as last read

    def close(self) -> None:
        self.db.close()

    def read(self) -> Desired:
        with self.db.snapshot() as tx:
            current = _release_specs(tx.rows(RELEASES + CURRENT))
            pending_rows = tx.rows(RELEASES + PENDING)
            pending = _release_specs(pending_rows)
            one_offs = tx.rows(ONE_OFFS + "WHERE type = 'run'")
            specs = {**current, **pending}
            for app_id, version in {_release_key(d) for d in one_offs} - specs.keys():
                where = "WHERE r.app_id = ? AND r.version = ?"
                specs |= _release_specs(tx.rows(RELEASES + where, app_id, version))
            formations: dict[str, list[FormationSpec]] = {}
            for app_id, type_, quantity, size, restarted_at in tx.rows(
                "SELECT app_id, type, quantity, size, restarted_at FROM formations"
            ):
                spec = FormationSpec(type_, quantity, size, moment(restarted_at).timestamp())
                formations.setdefault(app_id, []).append(spec)
            requests: dict[str, dict[str, float]] = {}
            for app_id, name, restart_at in tx.rows(
                "SELECT app_id, name, restart_at FROM dynos"
                " WHERE type != 'run' AND restart_at IS NOT NULL"
            ):
                requests.setdefault(app_id, {})[name] = moment(restart_at).timestamp()
            releases = {app_id: spec for (app_id, _), spec in current.items()}
            activity = {
                app_id: moment(at).timestamp()
                for app_id, at in tx.rows("SELECT app_id, last_request_at FROM app_activity")
            }
            exhausted = self._exhausted(tx)
            owners = dict(tx.rows("SELECT id, owner_id FROM apps"))
            self._owners |= owners
            apps = {
                app_id: DesiredApp(
                    app_id,
                    releases.get(app_id),
                    tuple(formations.get(app_id, ())),
                    requests.get(app_id, {}),
                    activity.get(app_id),
                    owner_id in exhausted,
                )
                for app_id, owner_id in owners.items()
            }
            return Desired(
                apps,
                tuple(
                    PendingRelease(pending[(app_id, version)], command or "")
                    for app_id, version, command, *_ in pending_rows
                ),
                tuple(_one_off(d, specs.get(_release_key(d))) for d in one_offs),
            )

    def _exhausted(self, tx: Transaction) -> set[str]:
        """The accounts whose eco dyno hours of this month are used up."""
        if self.eco_quota is None:
            return set()
        return exhausted_owners(tx, self.eco_quota, month_of(self.clock()))

    def add_eco_usage(self, used: Mapping[tuple[str, str], float]) -> None:
        """Add eco dyno seconds, by (app id, month), to the accounts owning the apps."""
        with self.db.write() as tx:
            owners = dict(tx.rows("SELECT id, owner_id FROM apps"))
            for (app_id, month), seconds in used.items():
                owner = owners.get(app_id) or self._owners.get(app_id)
                if owner is None or seconds <= 0:
                    continue  # an app deleted before this agent knew its owner
                changed = tx.run(
                    "UPDATE eco_usage SET seconds = seconds + ?"
                    " WHERE user_id = ? AND app_id = ? AND month = ?",
                    *(seconds, owner, app_id, month),
                )
                if not changed:
                    tx.run(
                        "INSERT INTO eco_usage (user_id, app_id, month, seconds)"
                        " VALUES (?, ?, ?, ?)",
                        *(owner, app_id, month, seconds),
                    )

    def record_memory(self, readings: Sequence[MemoryReading], keep: timedelta) -> None:
        """Store one sample per dyno; forget samples older than `keep`."""
        at = _now()
        with self.db.write() as tx:
            tx.run("DELETE FROM memory_samples WHERE at < ?", at - keep)
            live = {app_id for (app_id,) in tx.rows("SELECT id FROM apps")}
            tx.run_many(
                "INSERT INTO memory_samples (app_id, dyno, at, memory_mb, quota_mb)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (r.app_id, r.dyno, at, round(r.used / 2**20, 1), r.quota >> 20)
                    for r in readings
                    if r.app_id in live
                ],
            )

    def write_dynos(self, rows: Sequence[DynoRow]) -> None:
        changed = False
        with self.db.write() as tx:
            apps = {app_id for (app_id,) in tx.rows("SELECT id FROM apps")}
            existing = {
                (d["app_id"], d["name"]): d
                for d in _dynos(tx.rows(AGENT_DYNOS + "WHERE type != 'run'"))
            }
            for row in rows:
                if row.app_id not in apps:
                    continue  # deleted meanwhile; its dynos are being stopped
                stored = existing.pop((row.app_id, row.name), None)
                if stored is None:
                    _insert_dyno(tx, row)
                    changed = True
                else:
                    changed |= _update_dyno(tx, stored["id"], _changes(stored, row))
            for stored in existing.values():
                tx.run("DELETE FROM dynos WHERE id = ?", stored["id"])
                changed = True
        if changed:
            self.on_rows_changed()

    def leftover_dynos(self, now: float) -> list[DynoRow]:
        restart = _at(now)
        found = []
        with self.db.write() as tx:
            for dyno in _dynos(tx.rows(AGENT_DYNOS + "WHERE type != 'run' OR state != 'starting'")):
                running = bool(dyno["pid"]) and dyno["state"] in ("starting", "up")
                if dyno["state"] == "idle" and dyno["type"] not in ("release", "run"):
                    found.append(_leftover(dyno))  # an eco dyno asleep: it sleeps on
                    continue
                if running:
                    found.append(_leftover(dyno))
                if running and dyno["type"] not in ("release", "run"):
                    # replaced as `ps:restart` would do it
                    _update_dyno(tx, dyno["id"], _differing(dyno, {"restart_at": restart}))
                else:
                    tx.run("DELETE FROM dynos WHERE id = ?", dyno["id"])
        return found

    def finish_release(self, app_id: str, version: int, succeeded: bool, output: str) -> None:
        with self.db.write() as tx:
            tx.run(
                "UPDATE releases SET status = ?, output = ?, updated_at = ?"
                " WHERE app_id = ? AND version = ? AND status = 'pending'",
                *("succeeded" if succeeded else "failed", output, _now(), app_id, version),
            )

    def claim_attach(self, attach_hash: str) -> OneOffSpec | None:
        with self.db.write() as tx:
            found = tx.row(
                "SELECT id FROM dynos"
                " WHERE attach_hash = ? AND type = 'run' AND state = 'starting'",
                attach_hash,
            )
            if found is None:
                return None
            # Taken: the secret works once.
            tx.run("UPDATE dynos SET state = 'up', updated_at = ? WHERE id = ?", _now(), found[0])
            dyno = tx.row(ONE_OFFS + "WHERE id = ?", found[0])
            assert dyno is not None
            where = "WHERE r.app_id = ? AND r.version = ?"
            specs = _release_specs(tx.rows(RELEASES + where, *_release_key(dyno)))
            return _one_off(dyno, specs.get(_release_key(dyno)))

    def one_off_started(self, app_id: str, name: str, pid: int | None) -> None:
        with self.db.write() as tx:
            dyno = tx.row(
                "SELECT id, state, pid FROM dynos WHERE app_id = ? AND name = ?", app_id, name
            )
            if dyno is not None:
                stored = {"state": dyno[1], "pid": dyno[2]}
                _update_dyno(tx, dyno[0], _differing(stored, {"state": "up", "pid": pid}))

    def one_off_finished(self, app_id: str, name: str) -> None:
        with self.db.write() as tx:
            tx.run("DELETE FROM dynos WHERE app_id = ? AND name = ?", app_id, name)

    def expire_unattached(self, created_before: float) -> list[tuple[str, str]]:
        with self.db.write() as tx:
            rows = tx.rows(
                "SELECT id, app_id, name FROM dynos WHERE type = 'run' AND attach = ?"
                " AND state = 'starting' AND created_at < ?",
                *(True, _at(created_before)),
            )
            for dyno_id, _, _ in rows:
                tx.run("DELETE FROM dynos WHERE id = ?", dyno_id)
            return [(app_id, name) for _, app_id, name in rows]

    def log_session(self, secret: str) -> SessionRequest | None:
        """The log session a URL's secret names, unless expired."""
        with self.db.snapshot() as tx:
            row = tx.row(
                "SELECT app_id, dyno, source, lines, tail, grep, since, expires_at"
                " FROM log_sessions WHERE id_hash = ?",
                hash_secret(secret),
            )
        if row is None or moment(row[7]) <= _now():
            return None
        app_id, dyno, source, lines, tail, grep, since, _ = row
        since_time = moment(since).timestamp() if since is not None else None
        return SessionRequest(app_id, dyno, source, lines, bool(tail), grep, since_time)

    def log_targets(self) -> tuple[set[str], list[DrainSpec]]:
        """The apps that exist (the others' logs go) and every app's drains."""
        with self.db.snapshot() as tx:
            apps = {app_id for (app_id,) in tx.rows("SELECT id FROM apps")}
            drains = [
                DrainSpec(drain_id, app_id, url, token)
                for drain_id, app_id, url, token in tx.rows(
                    "SELECT id, app_id, url, token FROM log_drains ORDER BY created_at, id"
                )
            ]
        return apps, drains


def _release_specs(rows: Iterable[tuple[Any, ...]]) -> dict[tuple[str, int], ReleaseSpec]:
    """Rows of RELEASES as specs, by (app_id, version)."""
    specs = {}
    for app_id, version, _, config, checksum, process_types, uid in rows:
        specs[(app_id, version)] = ReleaseSpec(
            app_id,
            version,
            checksum,
            dict(json_value(config) or {}),
            dict(json_value(process_types) or {}),
            uid,
        )
    return specs


def _release_key(one_off: tuple[Any, ...]) -> tuple[str, int]:
    """A row of ONE_OFFS: the (app_id, version) of its release."""
    return one_off[0], one_off[1]


def _one_off(row: tuple[Any, ...], release: ReleaseSpec | None) -> OneOffSpec:
    app_id, _, name, command, size, attach, state, restart_at = row
    restart = moment_or_none(restart_at)
    return OneOffSpec(
        app_id,
        name,
        command,
        release,
        size,
        bool(attach),
        state,
        restart.timestamp() if restart else None,
    )


def _dynos(rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows of AGENT_DYNOS by column name, datetimes aware."""
    dynos = [dict(zip(AGENT_DYNO_COLUMNS, row, strict=True)) for row in rows]
    for dyno in dynos:
        dyno["restart_at"] = moment_or_none(dyno["restart_at"])
        dyno["updated_at"] = moment(dyno["updated_at"])
    return dynos


def _leftover(dyno: Mapping[str, Any]) -> DynoRow:
    # The row does not keep when the dyno started; it was last written after that, which is
    # what both a restart request and telling the dyno from a later user of its pid need.
    return DynoRow(
        dyno["app_id"],
        dyno["name"],
        dyno["type"],
        dyno["command"],
        dyno["size"],
        dyno["release_version"],
        dyno["state"],
        dyno["port"],
        dyno["pid"],
        dyno["updated_at"].timestamp(),
    )


def _changes(stored: Mapping[str, Any], row: DynoRow) -> dict[str, object]:
    """The observed values of `row` that differ from its stored dyno row."""
    values: dict[str, object] = {
        "type": row.type,
        "command": row.command,
        "size": row.size,
        "release_version": row.release_version,
        "state": row.state,
        "port": row.port,
        "pid": row.pid,
    }
    asked: datetime | None = stored.get("restart_at")
    if row.retry_at is not None:
        # Keep an earlier restart the API asked for meanwhile (`ps:restart` on a crashed dyno).
        retry = _at(row.retry_at)
        if asked is None or asked.timestamp() <= row.started_at or asked > retry:
            values["restart_at"] = retry
    elif asked is not None and asked.timestamp() <= row.started_at + 0.001:
        values["restart_at"] = None  # a restart request (or retry time) this dyno answered
    return _differing(stored, values)


def _differing(stored: Mapping[str, Any], values: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in values.items() if stored.get(key) != value}


def _insert_dyno(tx: Transaction, row: DynoRow) -> None:
    created = _now()
    tx.run(
        """
        INSERT INTO dynos (id, app_id, name, type, command, size, release_version, state, port,
            pid, attach, restart_at, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        *(str(uuid.uuid4()), row.app_id, row.name, row.type, row.command, row.size),
        *(row.release_version, row.state, row.port, row.pid, False),
        *(_changes({}, row).get("restart_at"), created, created),
    )


def _update_dyno(tx: Transaction, dyno_id: str, changes: Mapping[str, object]) -> bool:
    """Write what changed, with updated_at (the models' onupdate); nothing if nothing did."""
    if not changes:
        return False
    values = {**changes, "updated_at": _now()}
    # Column names from this module (_changes), never from input.
    assignments = ", ".join(f"{column} = ?" for column in values)
    tx.run(f"UPDATE dynos SET {assignments} WHERE id = ?", *values.values(), dyno_id)  # noqa: S608
    return True
