"""pg:backups: capture an add-on database into a numbered backup (b001...), list, download,
delete, and restore one into a database of an app the user may use.

Crash safety: a backup's row is committed `running` before pg_dump starts and finished in a
transaction of its own; its file gets its final name only when complete. Captures run only in
the API process (a request's background task or the scheduler's thread), so a row still
`running` when the API starts was cut short by its stop: `recover_backups` marks it failed.
Deleted backups stay as `deleted` rows, so a name (b003) never comes back for another dump.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kapal.addons.naming import PRIMARY
from kapal.addons.pgbackups import PARTIAL, BackupError, Credentials, PgTools
from kapal.domain.errors import Conflict, NotFound
from kapal.domain.pgbackups import backup_name, is_backup_ref, parse_backup_ref
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.services.pg import find_database
from kapal.settings import Settings
from kapal.store.models import Addon, App, PgBackup, User, now

log = logging.getLogger(__name__)

RUNNING, SUCCEEDED, FAILED, DELETED = "running", "succeeded", "failed", "deleted"
INTERRUPTED = "The backup was interrupted: Kapal's API stopped while it ran."


@dataclass(frozen=True)
class BackupView:
    backup: PgBackup
    app: App

    @property
    def name(self) -> str:
        """b003"""
        return backup_name(self.backup.kind, self.backup.number)


@dataclass(frozen=True)
class Restored:
    source: BackupView
    addon: Addon
    safety_copy: BackupView  # the target as it was just before (r001...)


def backup_file(settings: Settings, backup: PgBackup) -> Path:
    return settings.backups_dir / backup.app_id / f"{backup.id}.dump"


def postgres_addon(s: Session, user: User, app: App, ident: str | None) -> Addon:
    """The app's Postgres database, its own or attached, as pg:info names it (attachment,
    config var, add-on name or id; `pg.find_database`); DATABASE when `ident` is None."""
    return find_database(s, user, app.id, ident or PRIMARY).addon


def _find_backup(s: Session, app: App, ident: str) -> PgBackup:
    """By name (b003) or id, within the app; deleted ones are gone."""
    query = select(PgBackup).where(PgBackup.app_id == app.id, PgBackup.status != DELETED)
    if is_backup_ref(ident):
        ref = parse_backup_ref(ident)
        if ref.app not in (None, app.name):
            raise NotFound(f"{ident} is a backup of {ref.app}; ask for it there (-a {ref.app}).")
        row = s.scalar(query.where(PgBackup.kind == ref.kind, PgBackup.number == ref.number))
    else:
        row = s.scalar(query.where(PgBackup.id == ident))
    if row is None:
        raise NotFound(f"Couldn't find backup {ident} of {app.name}.")
    return row


def list_backups(ctx: Context, user: User, app_ident: str) -> list[BackupView]:
    """The app's backups, newest first."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        rows = s.scalars(
            select(PgBackup)
            .where(PgBackup.app_id == app.id, PgBackup.status != DELETED)
            .order_by(PgBackup.created_at.desc(), PgBackup.number.desc())
        )
        return [BackupView(row, app) for row in rows]


def get_backup(ctx: Context, user: User, app_ident: str, ident: str) -> BackupView:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        return BackupView(_find_backup(s, app, ident), app)


def start_capture(
    ctx: Context, user: User, app_ident: str, database: str | None, *, kind: str = "capture"
) -> BackupView:
    """Commit a `running` backup of the database; `run_capture` then makes it."""
    for attempt in range(3):
        try:
            with ctx.store.session() as s:
                app = find_app(s, user, app_ident)
                return start_row(s, app, postgres_addon(s, user, app, database), kind)
        except IntegrityError:  # another capture took the number (PostgreSQL store)
            if attempt == 2:
                raise Conflict("Another backup started at the same moment; try again.") from None
    raise AssertionError("unreachable")  # pragma: no cover


def start_row(s: Session, app: App, addon: Addon, kind: str) -> BackupView:
    running = s.scalar(
        select(PgBackup).where(PgBackup.addon_id == addon.id, PgBackup.status == RUNNING)
    )
    if running is not None:
        name = backup_name(running.kind, running.number)
        raise Conflict(f"A backup of {addon.name} is already running ({name}).")
    last = s.scalar(
        select(func.max(PgBackup.number)).where(PgBackup.app_id == app.id, PgBackup.kind == kind)
    )
    row = PgBackup(
        app_id=app.id,
        addon_id=addon.id,
        addon_name=addon.name,
        number=(last or 0) + 1,
        kind=kind,
        status=RUNNING,
    )
    s.add(row)
    s.flush()
    return BackupView(row, app)


def run_capture(ctx: Context, backup_id: str, tools: PgTools | None = None) -> BackupView | None:
    """pg_dump the backup's database; the row ends succeeded or failed (with the reason)."""
    with ctx.store.session() as s:
        row = s.get(PgBackup, backup_id)
        if row is None or row.status != RUNNING:
            return None
        app = s.get(App, row.app_id)
        addon = s.get(Addon, row.addon_id) if row.addon_id else None
        url = addon.config.get("URL") if addon else None
    assert app is not None
    name = backup_name(row.kind, row.number)
    path = backup_file(ctx.settings, row)
    try:
        if not url:
            raise BackupError(f"{row.addon_name} was destroyed before its backup started.")
        captured = (tools or PgTools()).capture(Credentials.from_url(url), path)
    except BackupError as exc:
        log.warning("backup %s of %s failed: %s", name, row.addon_name, exc.message)
        return _finish(ctx, row, app, FAILED, error=exc.message)
    except BaseException:
        log.exception("backup %s of %s failed", name, row.addon_name)
        _finish(ctx, row, app, FAILED, error="Internal error; see the API's log.")
        raise
    log.info("backup %s of %s: %d bytes", name, row.addon_name, captured.size_bytes)
    return _finish(
        ctx,
        row,
        app,
        SUCCEEDED,
        size_bytes=captured.size_bytes,
        database_bytes=captured.database_bytes,
    )


def _finish(
    ctx: Context,
    row: PgBackup,
    app: App,
    status: str,
    *,
    error: str | None = None,
    size_bytes: int | None = None,
    database_bytes: int | None = None,
) -> BackupView | None:
    with ctx.store.session() as s:
        current = s.get(PgBackup, row.id)
        if current is not None:
            current.status = status
            current.error = error
            current.size_bytes = size_bytes
            current.database_bytes = database_bytes
            current.finished_at = now()
    if current is None:  # the app was deleted meanwhile
        backup_file(ctx.settings, row).unlink(missing_ok=True)
        return None
    return BackupView(current, app)


def capture(
    ctx: Context,
    user: User,
    app_ident: str,
    database: str | None = None,
    tools: PgTools | None = None,
) -> BackupView:
    """start_capture and run_capture in one go (what the CLI's waiting amounts to)."""
    view = start_capture(ctx, user, app_ident, database)
    return run_capture(ctx, view.backup.id, tools) or view


def download(ctx: Context, user: User, app_ident: str, ident: str) -> tuple[BackupView, Path]:
    """A succeeded backup and its file."""
    view = get_backup(ctx, user, app_ident, ident)
    path = backup_file(ctx.settings, view.backup)
    if view.backup.status != SUCCEEDED or not path.is_file():
        raise NotFound(f"Backup {view.name} of {view.app.name} has no dump to download.")
    return view, path


def delete_backup(ctx: Context, user: User, app_ident: str, ident: str) -> BackupView:
    """Forget the backup and remove its file; its name is never reused."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        row = _find_backup(s, app, ident)
        if row.status == RUNNING:
            raise Conflict(f"Backup {backup_name(row.kind, row.number)} is still running.")
        row.status = DELETED
    backup_file(ctx.settings, row).unlink(missing_ok=True)
    return BackupView(row, app)


def restore_backup(
    ctx: Context,
    user: User,
    app_ident: str,
    backup: str | None,
    database: str | None,
    tools: PgTools | None = None,
) -> Restored:
    """Overwrite the database with a backup (`b003`, `APP::b003`, or the newest of this
    database), as the database's own role, after saving it as it was (r001...)."""
    tools = tools or PgTools()
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        target = postgres_addon(s, user, app, database)
        source = _restore_source(s, user, app, target, backup)
        path = backup_file(ctx.settings, source.backup)
        if not path.is_file():
            raise NotFound(f"The file of backup {source.name} is missing.")
        url = target.config.get("URL", "")
        started = start_row(s, app, target, "restore")
    safety = run_capture(ctx, started.backup.id, tools)
    if safety is None or safety.backup.status != SUCCEEDED:
        reason = safety.backup.error if safety else "its row disappeared"
        raise BackupError(
            f"Nothing was restored: saving {target.name} as it was first failed. {reason}"
        )
    tools.restore(Credentials.from_url(url), path)
    log.info("restored backup %s into %s (copy before: %s)", source.name, target.name, safety.name)
    return Restored(source, target, safety)


def _restore_source(
    s: Session, user: User, app: App, target: Addon, backup: str | None
) -> BackupView:
    if backup is None:
        row = s.scalar(
            select(PgBackup)
            .where(
                PgBackup.app_id == app.id,
                PgBackup.addon_id == target.id,
                PgBackup.kind.in_(("capture", "scheduled")),
                PgBackup.status == SUCCEEDED,
            )
            .order_by(PgBackup.created_at.desc(), PgBackup.number.desc())
            .limit(1)
        )
        if row is None:
            raise NotFound(
                f"{target.name} has no backups to restore. "
                "Capture one with kapal pg:backups:capture, or name one (APP::b003)."
            )
        return BackupView(row, app)
    ref = parse_backup_ref(backup)
    owner = find_app(s, user, ref.app) if ref.app else app  # another app: the user's too
    row = _find_backup(s, owner, ref.name)
    if row.status != SUCCEEDED:
        raise Conflict(f"Backup {backup} did not succeed ({row.status}); choose another.")
    return BackupView(row, owner)


def recover_backups(ctx: Context) -> int:
    """At API start, when no capture can be running: rows left `running` become failed, and
    half-written or orphaned files go. Returns how many rows were failed."""
    with ctx.store.session() as s:
        stuck = list(s.scalars(select(PgBackup).where(PgBackup.status == RUNNING)))
        for row in stuck:
            log.warning("backup of %s was interrupted; marking it failed", row.addon_name)
            row.status = FAILED
            row.error = INTERRUPTED
            row.finished_at = now()
    for partial in ctx.settings.backups_dir.glob(f"*/*{PARTIAL}"):
        partial.unlink(missing_ok=True)
    sweep_files(ctx)
    return len(stuck)


def sweep_files(ctx: Context) -> int:
    """Remove dumps whose backup is gone (deleted, or its app destroyed); returns how many."""
    root = ctx.settings.backups_dir
    if not root.is_dir():
        return 0
    with ctx.store.session() as s:
        kept = set(s.scalars(select(PgBackup.id).where(PgBackup.status.in_((RUNNING, SUCCEEDED)))))
        apps = set(s.scalars(select(App.id)))
    removed = 0
    for path in root.glob("*/*.dump"):
        if path.stem not in kept:
            path.unlink(missing_ok=True)
            removed += 1
    for directory in root.iterdir():
        # Only a destroyed app's: a capture may be about to write into a live app's.
        if directory.is_dir() and directory.name not in apps and not any(directory.iterdir()):
            directory.rmdir()
    return removed
