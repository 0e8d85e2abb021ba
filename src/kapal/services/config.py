"""Config vars: each change is a new release, which restarts the dynos."""

from __future__ import annotations

from kapal.domain.errors import InvalidParams
from kapal.domain.names import validate_config_key
from kapal.domain.pageurls import PAGE_URL_VARS, check_page_url
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.services.releases import derive_release, latest_release, release_base, release_event
from kapal.store.models import Release, User

MAX_CONFIG_BYTES = 32 * 1024


def get_config(ctx: Context, user: User, app_ident: str) -> dict[str, str]:
    with ctx.store.session() as s:
        release = latest_release(s, find_app(s, user, app_ident))
        return dict(release.config) if release else {}


def update_config(
    ctx: Context, user: User, app_ident: str, changes: dict[str, str | None]
) -> tuple[dict[str, str], Release | None]:
    """Apply {KEY: value or None (unset)}; no release when nothing changes."""
    for key, value in changes.items():
        validate_config_key(key)
        if value is not None and not isinstance(value, str):
            raise InvalidParams(f"Value of {key} must be a string or null.")
        if value is not None and key in PAGE_URL_VARS:
            check_page_url(key, value)
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        base = release_base(s, app)
        config = dict(base.config) if base else {}
        new = dict(config)
        for key, value in changes.items():
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        if new == config:
            return config, None
        if sum(len(k) + len(v) for k, v in new.items()) > MAX_CONFIG_BYTES:
            raise InvalidParams("Config vars are limited to 32 kB per app.")
        set_keys = [k for k, v in changes.items() if v is not None and config.get(k) != v]
        removed = [k for k, v in changes.items() if v is None and k in config]
        parts = []
        if set_keys:
            parts.append(f"Set {', '.join(set_keys)} config vars")
        if removed:
            parts.append(f"Remove {', '.join(removed)} config vars")
        release = derive_release(s, app, user, "; ".join(parts), base=base, config=new)
    release_event(ctx, app, release, user)
    return new, release
