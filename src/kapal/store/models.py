"""Tables. The API writes desired state (apps, releases, formation); the agent writes dynos."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Token(Base):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class WebSession(Base):
    """A dashboard login; the cookie holds the secret, the table its SHA-256."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class App(Base):
    __tablename__ = "apps"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(30), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    # Buildpack URLs run in order by the next build; empty: detect (the built-in Python).
    buildpacks: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # The unprivileged uid its dynos and builds run as (kapal.domain.uids).
    uid: Mapped[int | None] = mapped_column(Integer, unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Slug(Base):
    """A built app: a compressed archive stored once per content hash."""

    __tablename__ = "slugs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    checksum: Mapped[str] = mapped_column(String(80))  # "SHA256:<hex>"
    size: Mapped[int] = mapped_column(Integer)
    process_types: Mapped[dict[str, str]] = mapped_column(JSON)
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Build(Base):
    __tablename__ = "builds"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|succeeded|failed
    source_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The buildpack URLs this build runs (the app's when it was made); empty: detect.
    buildpacks: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    slug_id: Mapped[str | None] = mapped_column(ForeignKey("slugs.id"), nullable=True)
    release_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Release(Base):
    """An immutable (slug, config) pair. The current release is the newest succeeded one."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("app_id", "version"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(255))
    slug_id: Mapped[str | None] = mapped_column(ForeignKey("slugs.id"), nullable=True)
    config: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # pending: its release command has not finished yet; failed: it will never go live.
    status: Mapped[str] = mapped_column(String(16), default="succeeded")
    release_command: Mapped[str | None] = mapped_column(Text, nullable=True)
    output: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Formation(Base):
    __tablename__ = "formations"
    __table_args__ = (UniqueConstraint("app_id", "type"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[str] = mapped_column(String(32), default="eco")
    # Bumped by ps:restart; dynos started before it are replaced.
    restarted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Dyno(Base):
    """A dyno as observed by the agent (formation dynos), or a one-off requested by the API."""

    __tablename__ = "dynos"
    __table_args__ = (UniqueConstraint("app_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))  # web.1, run.4821
    type: Mapped[str] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(Text)
    size: Mapped[str] = mapped_column(String(32), default="eco")
    release_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="starting")
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # One-off dynos: attach through the rendezvous with this secret (SHA-256 stored).
    attach: Mapped[bool] = mapped_column(Boolean, default=False)
    attach_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    exit_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    restart_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Addon(Base):
    __tablename__ = "addons"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(64))
    plan: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="provisioning")
    provider_id: Mapped[str] = mapped_column(String(128), default="")
    # Secret: the config vars the provider returned ({"URL": "postgres://..."}).
    config: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Attachment(Base):
    __tablename__ = "addon_attachments"
    __table_args__ = (UniqueConstraint("app_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    addon_id: Mapped[str] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))  # DATABASE -> DATABASE_URL
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class LogSession(Base):
    """A log session: its URL carries a secret whose SHA-256 is stored here."""

    __tablename__ = "log_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    dyno: Mapped[str | None] = mapped_column(String(80), nullable=True)
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    lines: Mapped[int] = mapped_column(Integer, default=100)
    tail: Mapped[bool] = mapped_column(Boolean, default=False)
    grep: Mapped[str | None] = mapped_column(String(200), nullable=True)  # substring to match
    since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AddonProvider(Base):
    """A third-party add-on service, reached through Heroku's Add-on Partner API: Kapal POSTs
    to `base_url` with Basic auth `id:password` to provision, PUTs plan changes and DELETEs.
    `plans`: [{"name": "test", "description": "..."}]; `config_vars`: the names it sets."""

    __tablename__ = "addon_providers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the service's slug
    name: Mapped[str] = mapped_column(String(100))  # human name
    base_url: Mapped[str] = mapped_column(String(2048))
    password: Mapped[str] = mapped_column(String(200))  # secret: never in responses or logs
    plans: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    config_vars: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class PgBackup(Base):
    """A pg_dump (custom format) of an add-on database: `kind` capture (b001, b002, ...,
    numbered per app) or restore (r001 ...: the copy taken just before a restore)."""

    __tablename__ = "pg_backups"
    __table_args__ = (
        UniqueConstraint("app_id", "kind", "number", name="uq_pg_backups_app_kind_number"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    # Kept after the add-on is destroyed (a backup outlives its database), then NULL.
    addon_id: Mapped[str | None] = mapped_column(
        ForeignKey("addons.id", ondelete="SET NULL"), index=True, nullable=True
    )
    addon_name: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="capture")
    status: Mapped[str] = mapped_column(String(16), default="running")  # succeeded, failed
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    database_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PgBackupSchedule(Base):
    """`pg:backups:schedule --at '02:00 UTC'`: a daily capture of one add-on database."""

    __tablename__ = "pg_backup_schedules"
    addon_id: Mapped[str] = mapped_column(
        ForeignKey("addons.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class LogDrain(Base):
    """Where an app's log lines are also sent: syslog://, syslog+tls:// or https:// (Heroku's
    log-drain); `token` (d.<uuid>) names the app in every line sent there."""

    __tablename__ = "log_drains"
    __table_args__ = (UniqueConstraint("app_id", "url", name="uq_log_drains_app_url"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    token: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Source(Base):
    """An uploaded source tarball that a build can use (Heroku's /sources)."""

    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class MemorySample(Base):
    """A dyno's memory use at one moment, sampled by the agent (kept for a day: charts)."""

    __tablename__ = "memory_samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    dyno: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    memory_mb: Mapped[float] = mapped_column(Float)
    quota_mb: Mapped[int] = mapped_column(Integer)


class AppActivity(Base):
    """When the router last had a request for the app (eco web dynos sleep after a while
    without one). Written by the router, read by the agent."""

    __tablename__ = "app_activity"
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    last_request_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class EcoUsage(Base):
    """Seconds of eco dyno time an account used on one app in one month ("2026-11").
    The app is not a foreign key: deleting an app must not give its hours back."""

    __tablename__ = "eco_usage"
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    app_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class SniEndpoint(Base):
    """A TLS certificate (chain, PEM) and its private key (secret) the router serves by SNI."""

    __tablename__ = "sni_endpoints"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    certificate_chain: Mapped[str] = mapped_column(Text)
    private_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class Domain(Base):
    """A custom hostname the router serves for an app (the default NAME.<apps domain> is
    not stored: it follows the app's name)."""

    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="custom")
    cname: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sni_endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("sni_endpoints.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class RouterMetric(Base):
    """One router worker's counts for one app in one minute; the API adds the workers up.
    `histogram` holds request counts per response-time bucket (kapal.domain.metrics)."""

    __tablename__ = "router_metrics"
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True, index=True)
    worker: Mapped[str] = mapped_column(String(32), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    status_1xx: Mapped[int] = mapped_column(Integer, default=0)
    status_2xx: Mapped[int] = mapped_column(Integer, default=0)
    status_3xx: Mapped[int] = mapped_column(Integer, default=0)
    status_4xx: Mapped[int] = mapped_column(Integer, default=0)
    status_5xx: Mapped[int] = mapped_column(Integer, default=0)
    histogram: Mapped[list[int]] = mapped_column(JSON, default=list)
