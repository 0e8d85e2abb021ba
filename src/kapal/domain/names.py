"""Names users choose or are given: apps, config vars, process types, add-ons."""

from __future__ import annotations

import re
import secrets

from kapal.domain.errors import InvalidParams

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
CONFIG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # whole key: use fullmatch
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_ADJECTIVES = (
    "ancient autumn billowing bitter black blue bold brave breezy brisk calm cold cool crimson "
    "dark dawn delicate divine dry empty falling fancy floral fragrant frosty gentle green hidden "
    "holy icy jolly late lingering little lively long lucky misty morning muddy nameless noisy "
    "odd old orange patient plain polished polar proud purple quiet rapid red restless rough "
    "round royal serene shiny shrouded silent small snowy solitary sparkling spring steep still "
    "summer sweet thawing twilight wandering weathered white wild winter wispy withered young"
).split()
_NOUNS = (
    "anchorage bay beach bird breeze brook bush butterfly canyon caverns cherry cliffs cloud "
    "coast dawn dew dream dune dust falls feather field fire firefly flower fog forest frog "
    "frost glade glitter grass harbor haze hill island lake leaf meadow moon morning mountain "
    "night paper pine plains pond rain reef resonance river sea shadow shape silence sky smoke "
    "snow sound star stream sun sunset surf thunder tree valley violet water waterfall wave "
    "wildflower wind wood"
).split()


def validate_app_name(name: str) -> str:
    """Return the name if Heroku would accept it, else raise InvalidParams."""
    if not APP_NAME.match(name):
        raise InvalidParams(
            f"Name {name!r} is invalid: use 3 to 30 lowercase letters, digits and dashes, "
            "starting with a letter and not ending with a dash."
        )
    return name


def random_app_name() -> str:
    """A Heroku-style name such as `serene-caverns-82714`."""
    adjective = secrets.choice(_ADJECTIVES)
    noun = secrets.choice(_NOUNS)
    return f"{adjective}-{noun}-{secrets.randbelow(100000):05d}"


def random_addon_name(service_slug: str) -> str:
    """An add-on name such as `postgresql-concave-52656`."""
    return f"{service_slug}-{secrets.choice(_ADJECTIVES)}-{secrets.randbelow(100000):05d}"


def validate_config_key(key: str) -> str:
    if not CONFIG_KEY.fullmatch(key):
        raise InvalidParams(
            f"Config var name {key!r} is invalid: use letters, digits and underscores, "
            "not starting with a digit."
        )
    return key


def validate_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidParams(f"{email!r} is not a valid email address.")
    return email
