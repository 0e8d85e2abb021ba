"""The user's git repository: which app its remotes point at, and adding or removing them."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

DEFAULT_REMOTE = "kapal"
APP_REMOTES = ("kapal", "heroku")  # searched in this order when no -a is given
GIT_TIMEOUT = 30.0


class GitError(Exception):
    pass


def _git(
    args: list[str], cwd: Path, environ: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {**environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {' '.join(args)}: {exc}") from exc


def _checked(args: list[str], cwd: Path, environ: Mapping[str, str]) -> str:
    result = _git(args, cwd, environ)
    if result.returncode != 0:
        raise GitError(result.stderr.strip() or f"git {' '.join(args)} failed")
    return result.stdout


def app_from_url(url: str) -> str | None:
    """`http://localhost:5000/NAME.git` (or `git@host:NAME.git`) -> NAME."""
    last = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    name = last.removesuffix(".git")
    return name if last.endswith(".git") and name else None


def in_work_tree(cwd: Path, environ: Mapping[str, str]) -> bool:
    try:
        result = _git(["rev-parse", "--is-inside-work-tree"], cwd, environ)
    except GitError:
        return False
    return result.returncode == 0 and result.stdout.strip() == "true"


def remotes(cwd: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Remote name -> fetch URL; empty outside a repository or without git."""
    try:
        result = _git(["remote", "-v"], cwd, environ)
    except GitError:
        return {}
    if result.returncode != 0:
        return {}
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition("\t")
        url, _, kind = rest.rpartition(" ")
        if kind == "(fetch)" and name and url:
            found[name] = url
    return found


def app_from_remotes(cwd: Path, environ: Mapping[str, str]) -> str | None:
    """The app named by the `kapal` remote, else by the `heroku` remote."""
    known = remotes(cwd, environ)
    for name in APP_REMOTES:
        if name in known and (app := app_from_url(known[name])):
            return app
    return None


def add_remote(cwd: Path, environ: Mapping[str, str], name: str, url: str) -> None:
    _checked(["remote", "add", name, url], cwd, environ)


def set_remote(cwd: Path, environ: Mapping[str, str], name: str, url: str) -> None:
    """Point remote `name` at `url`, adding it if missing."""
    if name in remotes(cwd, environ):
        _checked(["remote", "set-url", name, url], cwd, environ)
    else:
        add_remote(cwd, environ, name, url)


def remove_remotes(cwd: Path, environ: Mapping[str, str], url: str) -> list[str]:
    """Remove every remote whose URL is `url`; returns their names."""
    removed = []
    for name, remote_url in remotes(cwd, environ).items():
        if remote_url.rstrip("/") == url.rstrip("/"):
            _checked(["remote", "remove", name], cwd, environ)
            removed.append(name)
    return removed
