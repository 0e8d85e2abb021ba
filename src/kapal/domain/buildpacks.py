"""Buildpack references, as users set them on an app: a built-in name, a git URL (optionally
`#ref`), or a directory on the Kapal machine (an absolute path)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from kapal.domain.errors import InvalidParams

# The built-in Python buildpack answers to its own name and to Heroku's.
PYTHON = "kapal/python"
BUILTIN = {PYTHON: PYTHON, "heroku/python": PYTHON}
GIT_SCHEMES = ("https", "http", "git", "file")
MAX_URL = 2048
MAX_BUILDPACKS = 16
REF = re.compile(r"[A-Za-z0-9._/-]{1,200}")
CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


@dataclass(frozen=True)
class BuildpackRef:
    """What a buildpack URL points at: kind is `builtin`, `git` or `path`."""

    url: str
    kind: str
    location: str  # the built-in's canonical name, the git URL without #ref, or the path
    ref: str = ""  # a git branch or tag


def parse_buildpack(url: str) -> BuildpackRef:
    """The reference a buildpack URL makes; InvalidParams says what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidParams("A buildpack URL is required.")
    if len(url) > MAX_URL or any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidParams(f"{url[:80]!r} is not a valid buildpack URL.")
    if url in BUILTIN:
        return BuildpackRef(url, "builtin", BUILTIN[url])
    if url.startswith("/"):
        if "/../" in f"{url}/" or "//" in url:
            raise InvalidParams(f"Buildpack path {url} must be a plain absolute path.")
        return BuildpackRef(url, "path", url.rstrip("/") or "/")
    parts = urlsplit(url)
    if parts.scheme not in GIT_SCHEMES or not (parts.netloc or parts.scheme == "file"):
        raise InvalidParams(
            f"{url} is not a buildpack Kapal can use: give heroku/python, a git URL "
            "(https://host/repo.git[#ref]) or an absolute path to a directory on this machine."
        )
    ref = parts.fragment
    if ref and (not REF.fullmatch(ref) or ref.startswith("-") or ".." in ref):
        raise InvalidParams(f"{ref!r} is not a valid git branch or tag for a buildpack.")
    return BuildpackRef(url, "git", url.split("#", 1)[0], ref)


def validate_buildpacks(urls: list[str]) -> list[str]:
    """The list as given, each parsed; no duplicates, at most MAX_BUILDPACKS."""
    if len(urls) > MAX_BUILDPACKS:
        raise InvalidParams(f"An app can have at most {MAX_BUILDPACKS} buildpacks.")
    for url in urls:
        parse_buildpack(url)
    duplicates = sorted({url for url in urls if urls.count(url) > 1})
    if duplicates:
        raise InvalidParams(f"Buildpack {duplicates[0]} is listed more than once.")
    return list(urls)


def shown(text: str) -> str:
    """A URL, or a message naming one, as build output may show it: a user name or token in
    a URL is masked."""
    return CREDENTIALS.sub(r"\1***@", text)
