"""`pg:*` use-cases of kapal-postgresql add-ons: which database a name means on an app,
its figures (pg:info), its sessions (pg:ps, pg:kill) and emptying it (pg:reset)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kapal.addons.catalog import POSTGRESQL, Plan, find_service
from kapal.addons.errors import ClusterError, ProvisionError
from kapal.addons.naming import PRIMARY, config_var
from kapal.addons.pgserver import PostgresServer
from kapal.addons.postgres import PostgresProvisioner
from kapal.addons.postgres_cluster import admin_url
from kapal.addons.postgres_database import Backend, DatabaseInfo, PostgresDatabase
from kapal.domain.errors import Conflict, NotFound
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.models import Addon, App, Attachment, User

log = logging.getLogger(__name__)

MB = 1024 * 1024
STATUS_AVAILABLE = "Available"
STATUS_OVER_QUOTA = "Over storage quota: writes refused"


@dataclass(frozen=True)
class PgDatabase:
    """A Postgres add-on as one app sees it."""

    addon: Addon
    app: App  # the app it was named on
    owner: App  # the app that owns it (the same, unless attached from another)
    config_vars: tuple[str, ...]  # its config vars on `app`, DATABASE_URL first

    @property
    def plan(self) -> Plan:
        plan = POSTGRESQL.plan(self.addon.plan)
        if plan is None:
            raise ValueError(f"unknown {POSTGRESQL.name} plan {self.addon.plan!r}")
        return plan


@dataclass(frozen=True)
class DatabaseReport:
    database: PgDatabase
    info: DatabaseInfo | None  # None: the server did not answer, or it is not provisioned


def admin_server(ctx: Context) -> PostgresServer:
    """The server holding the add-on databases, as its superuser."""
    return provisioner(ctx).server


def provisioner(ctx: Context) -> PostgresProvisioner:
    """The Postgres provisioner of the configured (or Kapal's own) server."""
    try:
        return PostgresProvisioner(admin_url(ctx.settings))
    except ClusterError as exc:
        raise ProvisionError(str(exc)) from exc


def app_databases(s: Session, user: User, app_ident: str) -> tuple[App, list[PgDatabase]]:
    """The app's Postgres add-ons, its own and those attached from other apps."""
    app = find_app(s, user, app_ident)
    attachments = list(
        s.scalars(
            select(Attachment).where(Attachment.app_id == app.id).order_by(Attachment.created_at)
        )
    )
    attached = [a.addon_id for a in attachments]
    rows = s.scalars(
        select(Addon)
        .where(or_(Addon.app_id == app.id, Addon.id.in_(attached)))
        .order_by(Addon.created_at)
    )
    found = []
    for addon in rows:
        if find_service(addon.service) is not POSTGRESQL:
            continue
        names = sorted(
            (a.name for a in attachments if a.addon_id == addon.id), key=lambda n: n != PRIMARY
        )
        owner = app if addon.app_id == app.id else s.get(App, addon.app_id)
        assert owner is not None
        found.append(PgDatabase(addon, app, owner, tuple(config_var(n) for n in names)))
    return app, found


def find_database(s: Session, user: User, app_ident: str, ident: str) -> PgDatabase:
    """By attachment (DATABASE), config var (DATABASE_URL), add-on name or id; only a
    provisioned one, of an app (and an owning app) the user may use."""
    app, databases = app_databases(s, user, app_ident)
    if not databases:
        raise NotFound(f"{app.name} has no Postgres databases.")
    var = config_var(ident.removesuffix("_URL"))
    chosen = next((d for d in databases if var in d.config_vars), None) or next(
        (d for d in databases if ident in (d.addon.name, d.addon.id)), None
    )
    if chosen is None:
        valid = ", ".join(v for d in databases for v in d.config_vars) or "none"
        raise NotFound(f"Unknown database: {ident}. Valid options are: {valid}")
    find_app(s, user, chosen.owner.id)
    if chosen.addon.state != "provisioned":
        raise Conflict(f"{chosen.addon.name} is {chosen.addon.state}; try again later.")
    return chosen


def database_reports(
    ctx: Context, user: User, app_ident: str, ident: str | None = None
) -> list[DatabaseReport]:
    """pg:info: every Postgres database of the app, or the one named."""
    with ctx.store.session() as s:
        if ident is None:
            databases = app_databases(s, user, app_ident)[1]
        else:
            databases = [find_database(s, user, app_ident, ident)]
    server = None
    if any(d.addon.state == "provisioned" for d in databases):
        try:
            server = admin_server(ctx)
        except ProvisionError as exc:
            log.warning("pg:info: %s", exc.message)
    reports = []
    for database in databases:
        info = None
        if server is not None and database.addon.state == "provisioned":
            try:
                info = PostgresDatabase(server, database.addon.name).info()
            except ProvisionError as exc:
                log.warning("pg:info of %s: %s", database.addon.name, exc.message)
        reports.append(DatabaseReport(database, info))
    return reports


def database_sessions(
    ctx: Context, user: User, app_ident: str, ident: str, *, include_idle: bool = False
) -> tuple[PgDatabase, list[Backend]]:
    """pg:ps: the sessions of the database's own role, running a query unless `include_idle`."""
    with ctx.store.session() as s:
        database = find_database(s, user, app_ident, ident)
    backends = PostgresDatabase(admin_server(ctx), database.addon.name).backends(
        include_idle=include_idle
    )
    return database, backends


def end_session(
    ctx: Context, user: User, app_ident: str, ident: str, pid: int, *, force: bool = False
) -> PgDatabase:
    """pg:kill: cancel the query of a session of this database (end the session with `force`).
    A pid that is not one of its sessions is refused, whoever's it is."""
    with ctx.store.session() as s:
        database = find_database(s, user, app_ident, ident)
    signalled = PostgresDatabase(admin_server(ctx), database.addon.name).signal(
        pid, terminate=force
    )
    if signalled is None:
        raise NotFound(f"Process {pid} is not a connection to {database.addon.name}.")
    if not signalled:
        raise Conflict(f"Process {pid} could not be signalled; it may have ended already.")
    return database


def reset_database(ctx: Context, user: User, app_ident: str, ident: str) -> PgDatabase:
    """pg:reset: drop every table and row; the same role and URL, so no release."""
    with ctx.store.session() as s:
        database = find_database(s, user, app_ident, ident)
    postgres = provisioner(ctx)
    try:
        postgres.reset(database.addon.name)
    except ProvisionError as exc:
        raise ProvisionError(
            f"Could not reset {database.addon.name}. {exc.message} Run the command again to finish."
        ) from exc
    ctx.event(database.owner.id, f"Reset {database.addon.name} by user {user.email}")
    return database


def info_rows(report: DatabaseReport) -> list[tuple[str, str]]:
    """What pg:info shows, in Heroku's words where Heroku has them."""
    database, info = report.database, report.info
    plan = database.plan
    rows = [("Plan", plan.name)]
    if info is None:
        state = database.addon.state
        rows.append(("Status", "Unavailable" if state == "provisioned" else state.capitalize()))
    else:
        limit = "" if info.connection_limit < 0 else f"/{info.connection_limit}"
        rows += [
            ("Status", STATUS_OVER_QUOTA if info.writes_refused else STATUS_AVAILABLE),
            ("Connections", f"{info.connections}{limit}"),
            ("PG Version", info.version),
        ]
    rows.append(("Created", database.addon.created_at.strftime("%Y-%m-%d %H:%M UTC")))
    if info is not None:
        rows += [
            ("Data Size", data_size(info.size, plan.storage_mb * MB)),
            ("Tables", str(info.tables)),
        ]
    if database.owner.id != database.app.id:
        rows.append(("Billing App", database.owner.name))
    rows.append(("Add-on", database.addon.name))
    return rows


def data_size(size: int, limit: int) -> str:
    """`7.9 MB / 1 GB (0.77%)`; the size alone without a limit."""
    if limit <= 0:
        return format_bytes(size)
    return f"{format_bytes(size)} / {format_bytes(limit)} ({size * 100 / limit:.2f}%)"


def format_bytes(size: int) -> str:
    """`512 bytes`, `7.9 MB`, `1 GB`: 1024-based, one decimal where it says something."""
    if size < 1024:
        return f"{size} bytes"
    value, units = size / 1024, ["kB", "MB", "GB", "TB"]
    # Compared as it will be printed: 1023.96 kB shows as 1024, so it is 1 MB.
    while round(value, 1) >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f}".removesuffix(".0") + f" {units[0]}"
