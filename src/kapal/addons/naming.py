"""Names of add-ons and attachments, and the config vars attachments produce."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection, Sequence

from kapal.domain.errors import InvalidParams

ADDON_NAME = re.compile(r"^[a-z][a-z0-9-]{1,48}[a-z0-9]$")
ATTACHMENT_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,58}$")
PRIMARY = "DATABASE"

# Heroku names extra databases HEROKU_POSTGRESQL_<COLOR>.
COLORS = (
    "AMBER AQUA BLACK BLUE BRONZE BROWN CHARCOAL COBALT COPPER CRIMSON CYAN GOLD GRAY GREEN "
    "IVORY JADE LIME MAGENTA MAROON MAUVE NAVY OLIVE ONYX ORANGE PINK PLUM PUCE PURPLE RED "
    "ROSE RUBY SILVER TEAL TOPAZ VIOLET WHITE YELLOW"
).split()


def validate_addon_name(name: str) -> str:
    if not ADDON_NAME.match(name):
        raise InvalidParams(
            f"Add-on name {name!r} is invalid: use 3 to 50 lowercase letters, digits and "
            "dashes, starting with a letter and not ending with a dash."
        )
    return name


def validate_attachment_name(name: str) -> str:
    if not ATTACHMENT_NAME.match(name):
        raise InvalidParams(
            f"Attachment name {name!r} is invalid: use uppercase letters, digits and "
            "underscores, starting with a letter (for example DATABASE)."
        )
    if name.endswith("_URL"):
        raise InvalidParams(f"Attachment name {name!r} must not end in _URL; Kapal adds that.")
    return name


def config_var(attachment: str) -> str:
    """The config var an attachment sets: DATABASE -> DATABASE_URL."""
    return f"{attachment}_URL"


def attachment_prefix(service_name: str) -> str:
    """kapal-postgresql -> KAPAL_POSTGRESQL."""
    return service_name.upper().replace("-", "_")


def default_attachment_name(
    service_name: str,
    taken: Collection[str],
    choose: Callable[[Sequence[str]], str] = secrets.choice,
    primary: str = PRIMARY,
) -> str:
    """`primary` (DATABASE for an app's first database) when free, else <SERVICE>_<COLOR>
    not yet used."""
    if primary not in taken:
        return primary
    prefix = attachment_prefix(service_name)
    free = [f"{prefix}_{c}" for c in COLORS if f"{prefix}_{c}" not in taken]
    if free:
        return choose(free)
    n = 2
    while f"{prefix}_{n}" in taken:
        n += 1
    return f"{prefix}_{n}"
