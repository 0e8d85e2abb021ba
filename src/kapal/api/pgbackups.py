"""pg:backups: /apps/{app}/pg-backups (capture, list, download, delete), /apps/{app}/pg-restores
and /apps/{app}/pg-backup-schedules. Kapal's own paths: Heroku's live on its data API host."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import FileResponse
from pydantic import BaseModel

from kapal.api.deps import CtxDep, UserDep
from kapal.api.serializers import app_ref, ts
from kapal.services import pgbackup_schedules as schedules
from kapal.services import pgbackups as backups
from kapal.services.pgbackup_schedules import ScheduleView, utcnow
from kapal.services.pgbackups import BackupView

router = APIRouter()


class CaptureBody(BaseModel):
    database: str | None = None  # DATABASE when absent


class RestoreBody(BaseModel):
    backup: str | None = None  # b003 or APP::b003; the database's newest when absent
    database: str | None = None


class ScheduleBody(BaseModel):
    at: str  # 02:00 UTC


def backup_json(view: BackupView) -> dict[str, Any]:
    backup = view.backup
    return {
        "id": backup.id,
        "name": view.name,
        "num": backup.number,
        "kind": backup.kind,
        "status": backup.status,
        "app": app_ref(view.app),
        "addon": {"id": backup.addon_id, "name": backup.addon_name},
        "size_bytes": backup.size_bytes,
        "database_bytes": backup.database_bytes,
        "error": backup.error,
        "created_at": ts(backup.created_at),
        "finished_at": ts(backup.finished_at),
    }


def schedule_json(view: ScheduleView) -> dict[str, Any]:
    row = view.schedule
    return {
        "addon": {"id": view.addon.id, "name": view.addon.name},
        "attachments": list(view.attachments),
        "hour": row.hour,
        "timezone": row.timezone,
        "at": view.spec.at,
        "last_run_at": ts(row.last_run_at),
        "next_run_at": ts(view.next_run_at(utcnow())),
        "created_at": ts(row.created_at),
    }


@router.get("/apps/{app}/pg-backups")
def list_backups(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return [backup_json(v) for v in backups.list_backups(ctx, user, app)]


@router.post("/apps/{app}/pg-backups", status_code=202)
def capture(
    app: str, ctx: CtxDep, user: UserDep, tasks: BackgroundTasks, body: CaptureBody | None = None
) -> dict[str, Any]:
    """Starts the capture and answers at once (status `running`); poll the backup for its end."""
    view = backups.start_capture(ctx, user, app, body.database if body else None)
    tasks.add_task(backups.run_capture, ctx, view.backup.id)
    return backup_json(view)


@router.get("/apps/{app}/pg-backups/{backup}")
def get_backup(app: str, backup: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return backup_json(backups.get_backup(ctx, user, app, backup))


@router.delete("/apps/{app}/pg-backups/{backup}")
def delete_backup(app: str, backup: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return backup_json(backups.delete_backup(ctx, user, app, backup))


@router.get("/apps/{app}/pg-backups/{backup}/download")
def download(app: str, backup: str, ctx: CtxDep, user: UserDep) -> FileResponse:
    """The dump (pg_dump's custom format), streamed from its file."""
    view, path = backups.download(ctx, user, app, backup)
    return FileResponse(path, media_type="application/octet-stream", filename=f"{view.name}.dump")


@router.post("/apps/{app}/pg-restores")
def restore(app: str, body: RestoreBody, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    """Answers when the restore is done (a thread of the API's pool waits for pg_restore)."""
    done = backups.restore_backup(ctx, user, app, body.backup, body.database)
    return {
        "backup": backup_json(done.source),
        "addon": {"id": done.addon.id, "name": done.addon.name},
        "safety_copy": backup_json(done.safety_copy),
    }


@router.get("/apps/{app}/pg-backup-schedules")
def list_schedules(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    return [schedule_json(v) for v in schedules.list_schedules(ctx, user, app)]


@router.put("/apps/{app}/pg-backup-schedules/{database}")
def set_schedule(
    app: str, database: str, body: ScheduleBody, ctx: CtxDep, user: UserDep
) -> dict[str, Any]:
    return schedule_json(schedules.set_schedule(ctx, user, app, database, body.at))


@router.delete("/apps/{app}/pg-backup-schedules/{database}")
def remove_schedule(app: str, database: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return schedule_json(schedules.remove_schedule(ctx, user, app, database))
