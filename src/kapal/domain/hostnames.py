"""Custom domains' hostnames: what may be added to an app, and which names a certificate or a
wildcard domain covers."""

from __future__ import annotations

import re

from kapal.domain.errors import InvalidParams

MAX_HOSTNAME = 253
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def validate_hostname(text: str, apps_domain: str) -> str:
    """The hostname as stored (lowercase, without a trailing dot), if an app may take it:
    RFC 1123 labels, at most 253 characters, `*.` only as a whole first label, at least two
    labels; nothing at or below the apps domain, whose names belong to the apps named so."""
    value = text.strip()
    if not value:
        raise InvalidParams("Hostname is empty.")
    if "://" in value or "/" in value or ":" in value or "@" in value:
        raise InvalidParams(
            f"Hostname {text!r} is invalid: give the bare name, such as www.example.com "
            "(no scheme, port or path)."
        )
    hostname = value.lower().removesuffix(".")
    if len(hostname) > MAX_HOSTNAME:
        raise InvalidParams(f"Hostname {text!r} is invalid: longer than {MAX_HOSTNAME} characters.")
    labels = hostname.split(".")
    if len(labels) < 2:
        raise InvalidParams(
            f"Hostname {text!r} is invalid: it needs a domain, such as www.example.com."
        )
    first, rest = labels[0], labels[1:]
    if first == "*":
        if len(rest) < 2:
            raise InvalidParams(
                f"Hostname {text!r} is invalid: a wildcard needs a domain below it."
            )
    elif not _LABEL.match(first):
        raise InvalidParams(_bad_label(text, first))
    for label in rest:
        if not _LABEL.match(label):
            raise InvalidParams(_bad_label(text, label))
    if rest[-1].isdigit():
        raise InvalidParams(f"Hostname {text!r} is invalid: an IP address is not a hostname.")
    base = apps_domain.lower().strip(".")
    if hostname == base or hostname.endswith("." + base):
        raise InvalidParams(
            f"Hostname {hostname} is in Kapal's apps domain {base}, whose names belong to the "
            f"apps (each is reached at NAME.{base}); add a name of your own domain."
        )
    return hostname


def _bad_label(text: str, label: str) -> str:
    return (
        f"Hostname {text!r} is invalid: {label!r} is not a DNS label (1 to 63 letters, digits "
        "and dashes, not starting or ending with a dash; `*` only as the whole first label)."
    )


def is_wildcard(hostname: str) -> bool:
    return hostname.startswith("*.")


def covers(pattern: str, hostname: str) -> bool:
    """Whether a certificate name (or a wildcard domain) `pattern` matches `hostname`:
    exactly, or `*.example.com` for one label more (`www.example.com`, and the wildcard
    `*.example.com` itself), as TLS clients match them."""
    pattern, hostname = pattern.lower().rstrip("."), hostname.lower().rstrip(".")
    if pattern == hostname:
        return True
    if not pattern.startswith("*."):
        return False
    head, _, parent = hostname.partition(".")
    return bool(head) and head != "*" and parent == pattern[2:]


def is_apex(hostname: str) -> bool:
    """A bare domain (`example.com`): DNS allows no CNAME there, so it needs ALIAS or ANAME.
    Two labels is a guess (co.uk would need the public suffix list), as Heroku's CLI makes."""
    return hostname.count(".") == 1
