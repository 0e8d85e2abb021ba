"""Daily pg:backups: `pg:backups:schedule --at '02:00 UTC'`, and the scheduler that captures
them (a thread of the API process, where every capture runs).

Level-triggered: each pass re-reads every schedule and captures those due (within the hour after
their time, not yet run since). A schedule is marked run in the transaction that starts its
capture, so it runs at most once a day, even when the API stops during the dump.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from kapal.addons.pgbackups import PgTools
from kapal.domain.errors import KapalError, NotFound
from kapal.domain.pgbackups import Schedule, is_due, next_due, parse_at
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.services.periodic import Periodic
from kapal.services.pgbackups import (
    DELETED,
    SUCCEEDED,
    BackupView,
    backup_file,
    postgres_addon,
    run_capture,
    start_row,
    sweep_files,
)
from kapal.store.models import Addon, App, Attachment, PgBackup, PgBackupSchedule, User

log = logging.getLogger(__name__)

KEEP_SCHEDULED = 7  # daily backups kept per database, as Heroku keeps a week of them


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScheduleView:
    schedule: PgBackupSchedule
    addon: Addon
    attachments: tuple[str, ...]  # DATABASE, ...

    @property
    def spec(self) -> Schedule:
        return Schedule(self.schedule.hour, self.schedule.timezone)

    def next_run_at(self, now: datetime) -> datetime:
        return next_due(self.spec, now)


def _view(s: Session, row: PgBackupSchedule, addon: Addon) -> ScheduleView:
    names = s.scalars(
        select(Attachment.name)
        .where(Attachment.addon_id == addon.id)
        .order_by(Attachment.created_at)
    )
    return ScheduleView(row, addon, tuple(names))


def list_schedules(ctx: Context, user: User, app_ident: str) -> list[ScheduleView]:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        rows = s.execute(
            select(PgBackupSchedule, Addon)
            .join(Addon, Addon.id == PgBackupSchedule.addon_id)
            .where(Addon.app_id == app.id)
            .order_by(Addon.created_at)
        ).all()
        return [_view(s, row, addon) for row, addon in rows]


def set_schedule(
    ctx: Context, user: User, app_ident: str, database: str | None, at: str
) -> ScheduleView:
    """Capture the database daily at `at` (`02:00 UTC`); replaces its previous schedule."""
    spec = parse_at(at)
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        addon = postgres_addon(s, user, app, database)
        row = s.get(PgBackupSchedule, addon.id)
        if row is None:
            row = PgBackupSchedule(addon_id=addon.id, hour=spec.hour, timezone=spec.timezone)
            s.add(row)
        else:
            row.hour, row.timezone = spec.hour, spec.timezone
        s.flush()
        return _view(s, row, addon)


def remove_schedule(ctx: Context, user: User, app_ident: str, database: str | None) -> ScheduleView:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        addon = postgres_addon(s, user, app, database)
        row = s.get(PgBackupSchedule, addon.id)
        if row is None:
            raise NotFound(f"{addon.name} has no backup schedule.")
        view = _view(s, row, addon)
        s.delete(row)
        return view


def run_due_captures(ctx: Context, now: datetime, tools: PgTools | None = None) -> list[BackupView]:
    """Capture every database whose daily time has come; returns the finished backups."""
    started: list[BackupView] = []
    with ctx.store.session() as s:
        for row in list(s.scalars(select(PgBackupSchedule))):
            try:
                due = is_due(Schedule(row.hour, row.timezone), now, row.last_run_at)
            except ZoneInfoNotFoundError:
                log.warning("backup schedule of add-on %s: unknown zone", row.addon_id)
                continue
            addon = s.get(Addon, row.addon_id)
            app = s.get(App, addon.app_id) if addon else None
            if not due or addon is None or app is None or addon.state != "provisioned":
                continue
            row.last_run_at = now
            try:
                started.append(start_row(s, app, addon, "scheduled"))
            except KapalError as exc:  # one already running: today's is skipped
                log.warning("scheduled backup of %s skipped: %s", addon.name, exc.message)
    finished = []
    for view in started:
        done = run_capture(ctx, view.backup.id, tools)
        if done is not None:
            finished.append(done)
            if done.backup.status == SUCCEEDED and done.backup.addon_id:
                prune_scheduled(ctx, done.backup.addon_id)
    return finished


def prune_scheduled(ctx: Context, addon_id: str, keep: int = KEEP_SCHEDULED) -> int:
    """Delete all but the newest `keep` succeeded scheduled backups of a database."""
    with ctx.store.session() as s:
        rows = list(
            s.scalars(
                select(PgBackup)
                .where(
                    PgBackup.addon_id == addon_id,
                    PgBackup.kind == "scheduled",
                    PgBackup.status == SUCCEEDED,
                )
                .order_by(PgBackup.created_at.desc(), PgBackup.number.desc())
                .offset(keep)
            )
        )
        for row in rows:
            row.status = DELETED
    for row in rows:
        backup_file(ctx.settings, row).unlink(missing_ok=True)
    return len(rows)


class BackupScheduler(Periodic):
    """Runs `run_due_captures` every `interval` seconds in a thread of its own (a dump cut
    short by the API's exit is failed by recover_backups at the next start)."""

    name = "pg-backup-scheduler"

    def __init__(
        self,
        ctx: Context,
        *,
        clock: Callable[[], datetime] = utcnow,
        interval: float = 60.0,
        tools: PgTools | None = None,
    ) -> None:
        super().__init__(interval)
        self._ctx = ctx
        self._clock = clock
        self._tools = tools

    def run_pass(self) -> list[BackupView]:
        """One pass: due captures, then files whose backup is gone."""
        done = run_due_captures(self._ctx, self._clock(), self._tools)
        sweep_files(self._ctx)
        return done
