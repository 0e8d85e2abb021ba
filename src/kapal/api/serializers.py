"""Store rows as Heroku Platform API v3 JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kapal.domain.formation import display_size
from kapal.settings import Settings
from kapal.store.models import App, Dyno, Formation, MemorySample, Release, User


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def user_ref(user: User | None) -> dict[str, Any] | None:
    return {"id": user.id, "email": user.email} if user else None


def account(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "created_at": ts(user.created_at)}


def app_json(
    settings: Settings,
    app: App,
    owner: User,
    released_at: datetime | None = None,
    process_tier: str = "eco",
    *,
    slug_size: int | None = None,
    repo_size: int | None = None,
) -> dict[str, Any]:
    """`repo_size` and `slug_size` are always present: the Heroku CLI's apps:info fails on a
    missing one (null shows as 0 B)."""
    return {
        "id": app.id,
        "name": app.name,
        "web_url": settings.web_url(app.name),
        "git_url": settings.git_url(app.name),
        "owner": user_ref(owner),
        "maintenance": app.maintenance,
        "created_at": ts(app.created_at),
        "updated_at": ts(app.updated_at),
        "released_at": ts(released_at),
        "stack": {"name": "kapal-24"},
        "build_stack": {"name": "kapal-24"},
        "region": {"name": "local"},
        "generation": {"name": "cedar"},
        "process_tier": process_tier,
        "repo_size": repo_size,
        "slug_size": slug_size,
        "create_status": "complete",
        "acm": False,
        "archived_at": None,
        "internal_routing": None,
        "space": None,
        "team": None,
    }


def app_ref(app: App) -> dict[str, str]:
    return {"id": app.id, "name": app.name}


def formation_json(app: App, row: Formation, command: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "app": app_ref(app),
        "type": row.type,
        "quantity": row.quantity,
        "size": display_size(row.size),
        "dyno_size": {"name": display_size(row.size)},
        "command": command,
        "created_at": ts(row.created_at),
        "updated_at": ts(row.updated_at),
    }


def dyno_json(app: App, dyno: Dyno, attach_url: str | None = None) -> dict[str, Any]:
    return {
        "id": dyno.id,
        "app": app_ref(app),
        "name": dyno.name,
        "type": dyno.type,
        "state": dyno.state,
        "command": dyno.command,
        "size": display_size(dyno.size),
        "release": {"version": dyno.release_version},
        "attach_url": attach_url,
        # Kapal's own: when a crashed dyno is started again (its back-off ends).
        "restart_at": ts(dyno.restart_at) if dyno.state == "crashed" and dyno.restart_at else None,
        "created_at": ts(dyno.created_at),
        "updated_at": ts(dyno.updated_at),
    }


def release_json(
    app: App, release: Release, user: User | None, current_version: int | None
) -> dict[str, Any]:
    return {
        "id": release.id,
        "app": app_ref(app),
        "version": release.version,
        "description": release.description,
        "status": release.status,
        "current": release.version == current_version,
        "eligible_for_rollback": release.status == "succeeded",
        "slug": {"id": release.slug_id} if release.slug_id else None,
        "user": user_ref(user),
        "output_stream_url": None,
        "addon_plan_names": [],
        "created_at": ts(release.created_at),
        "updated_at": ts(release.updated_at),
    }


def memory_sample_json(sample: MemorySample) -> dict[str, Any]:
    return {
        "dyno": sample.dyno,
        "at": ts(sample.at),
        "memory_mb": sample.memory_mb,
        "quota_mb": sample.quota_mb,
    }
