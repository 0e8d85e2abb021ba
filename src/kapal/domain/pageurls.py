"""Custom error and maintenance pages: the config vars that name them and what a usable URL
is (the router shows it in a full-window iframe instead of its own page)."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from kapal.domain.errors import InvalidParams

ERROR_PAGE_URL: Final = "ERROR_PAGE_URL"
MAINTENANCE_PAGE_URL: Final = "MAINTENANCE_PAGE_URL"
PAGE_URL_VARS: Final = (ERROR_PAGE_URL, MAINTENANCE_PAGE_URL)
MAX_LENGTH: Final = 2048
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")  # controls, spaces, backslashes (URL parsers differ)


def page_url_problem(value: str) -> str | None:
    """What is wrong with `value` as a page URL, or None when it is an absolute http(s) URL."""
    if len(value) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if _UNSAFE.search(value):
        return "must not contain spaces, control characters or backslashes"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    return None


def check_page_url(key: str, value: str) -> None:
    """Refuse a value of ERROR_PAGE_URL or MAINTENANCE_PAGE_URL the router could not show."""
    problem = page_url_problem(value)
    if problem is not None:
        raise InvalidParams(f"{key} {problem}, e.g. https://example.com/error.html.")


def usable_page_url(value: object) -> str:
    """The URL if the router can show it, else "" (its own page): for values stored before
    they were checked."""
    return value if isinstance(value, str) and page_url_problem(value) is None else ""
