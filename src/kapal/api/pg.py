"""Kapal's own routes for the `pg:*` commands (Heroku serves these from a separate data API):
/apps/{app}/pg-databases[/{database}], named by attachment, config var or add-on name; and
the one path of that data API `heroku pg:info` reads, /client/v11/databases/{add-on}, which the
Heroku CLI sends here once HEROKU_DATA_HOST names Kapal's host (`kapal heroku-env`)."""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Query
from pydantic import BaseModel

from kapal.addons.postgres_database import Backend
from kapal.api.deps import CtxDep, UserDep
from kapal.api.serializers import app_ref, ts
from kapal.domain.errors import NotFound
from kapal.services import pg as pg_service
from kapal.services.addons import find_user_addon
from kapal.services.pg import MB, DatabaseReport, PgDatabase, info_rows
from kapal.services.pg_credentials import rotate_credentials
from kapal.services.pg_promote import promote

router = APIRouter()
BASE = "/apps/{app}/pg-databases/{database}"
CLI_ROWS = ("Add-on", "Billing App")  # pg:info rows the Heroku CLI makes itself


class Kill(BaseModel):
    pid: int
    force: bool = False


def _database_json(db: PgDatabase) -> dict[str, Any]:
    return {
        "addon": {"id": db.addon.id, "name": db.addon.name},
        "app": app_ref(db.app),
        "billing_app": app_ref(db.owner),
        "plan": {"name": f"{db.addon.service}:{db.addon.plan}"},
        "config_vars": list(db.config_vars),
        "created_at": ts(db.addon.created_at),
    }


def _report_json(report: DatabaseReport) -> dict[str, Any]:
    info, plan = report.info, report.database.plan
    if info is None:
        state = report.database.addon.state
        status = "unavailable" if state == "provisioned" else state
    else:
        status = "over_storage_quota" if info.writes_refused else "available"
    figures: dict[str, Any] = {
        "status": status,
        "storage_limit": plan.storage_mb * MB,
        "connection_limit": plan.connection_limit,
        "version": info.version if info else None,
        "data_size": info.size if info else None,
        "tables": info.tables if info else None,
        "connections": info.connections if info else None,
    }
    rows = [{"name": name, "values": [value]} for name, value in info_rows(report)]
    return {**_database_json(report.database), **figures, "info": rows}


def _backend_json(backend: Backend) -> dict[str, Any]:
    return {
        "pid": backend.pid,
        "state": backend.state,
        "query_start": ts(backend.query_start),
        "running_for": backend.running_for,
        "waiting": backend.waiting,
        "query": backend.query,
        "application_name": backend.application_name,
    }


@router.get("/apps/{app}/pg-databases")
def list_databases(app: str, ctx: CtxDep, user: UserDep) -> list[dict[str, Any]]:
    """pg:info: every Postgres database of the app."""
    return [_report_json(r) for r in pg_service.database_reports(ctx, user, app)]


@router.get(BASE)
def get_database(app: str, database: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    (report,) = pg_service.database_reports(ctx, user, app, database)
    return _report_json(report)


@router.get("/client/v11/databases/{addon}")
def data_api_database(addon: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    """A database as Heroku's data API shows it: `info` rows, and its URL (`resource_url`),
    by which the CLI finds the config vars that hold it."""
    view = find_user_addon(ctx, user, addon)
    (report,) = pg_service.database_reports(ctx, user, view.app.id, view.addon.name)
    body = _report_json(report)
    # The CLI adds these two rows itself, from the add-on it resolved.
    body["info"] = [row for row in body["info"] if row["name"] not in CLI_ROWS]
    return {**body, "resource_url": view.addon.config.get("URL")}


DATA_API_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@router.api_route("/client/v11/{rest:path}", methods=DATA_API_METHODS, response_model=None)
def data_api_elsewhere(rest: str, user: UserDep) -> NoReturn:
    """The rest of Heroku's Postgres data API (`heroku pg:backups`...): what to use instead.
    (kapal.api.redis serves the Redis part that `redis:info` and `redis:maxmemory` use.)"""
    raise NotFound(
        "Kapal serves pg:info and pg:psql of the Heroku CLI's Postgres commands; for the "
        "others use kapal's own: kapal pg:backups, pg:ps, pg:kill, pg:reset..."
    )


@router.get(BASE + "/sessions")
def list_sessions(
    app: str,
    database: str,
    ctx: CtxDep,
    user: UserDep,
    include_idle: Annotated[bool, Query(alias="all")] = False,
) -> list[dict[str, Any]]:
    """pg:ps: the database's sessions running a query (with ?all=true, idle ones too)."""
    _, backends = pg_service.database_sessions(ctx, user, app, database, include_idle=include_idle)
    return [_backend_json(b) for b in backends]


@router.post(BASE + "/actions/kill")
def kill(app: str, database: str, body: Kill, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    """pg:kill: cancel a session's query, or end the session with force."""
    db = pg_service.end_session(ctx, user, app, database, body.pid, force=body.force)
    return {**_database_json(db), "pid": body.pid, "terminated": body.force}


@router.post(BASE + "/actions/rotate-credentials")
def rotate(app: str, database: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    rotation = rotate_credentials(ctx, user, app, database)
    releases = [{"app": app_ref(a), "id": r.id, "version": r.version} for a, r in rotation.releases]
    return {**_database_json(rotation.database), "releases": releases}


@router.post(BASE + "/actions/reset")
def reset(app: str, database: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    return _database_json(pg_service.reset_database(ctx, user, app, database))


@router.post(BASE + "/actions/promote")
def promote_database(app: str, database: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    promotion = promote(ctx, user, app, database)
    previous = None
    if promotion.previous is not None:
        previous = {"name": promotion.previous, "config_var": promotion.kept_as}
    release = {"id": promotion.release.id, "version": promotion.release.version}
    return {**_database_json(promotion.database), "release": release, "previous": previous}
