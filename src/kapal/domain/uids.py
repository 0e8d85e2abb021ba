"""Each app's own uid: its dynos and builds run as it, so that apps can neither read nor
signal each other. Numbered from a base far above the machine's users and the usual
subordinate-uid ranges (/etc/subuid); no /etc/passwd entry is made."""

from __future__ import annotations

APP_UID_BASE = 1_200_000_000


def next_app_uid(highest: int | None) -> int:
    """The uid of a new app, given the highest one in use (None: no app has one yet)."""
    return max(highest or APP_UID_BASE, APP_UID_BASE) + 1
