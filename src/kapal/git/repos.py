"""Bare app repositories: made on first use, with Kapal's pre-receive hook installed."""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

GIT_TIMEOUT = 60.0
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"

# The hook runs the platform's own interpreter: the build talks HTTP to the API from there.
HOOK = """\
#!/bin/sh
# Installed by Kapal: a push to main (or master) builds and releases the app.
exec {python} -m kapal.git.hook
"""

_creating = threading.Lock()


def git_binary() -> str:
    return shutil.which("git", path=SEARCH_PATH) or "git"


def git_env(repos_dir: Path, repo: Path) -> dict[str, str]:
    """A clean environment for git on the server: no user or system config, one trusted repo."""
    git_dir = str(Path(git_binary()).parent)
    path = SEARCH_PATH if git_dir in SEARCH_PATH.split(":") else f"{git_dir}:{SEARCH_PATH}"
    return {
        "PATH": path,
        "HOME": str(repos_dir),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        # safe.directory counts only from protected config, which includes the environment.
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": str(repo),
    }


def repo_path(repos_dir: Path, app_name: str) -> Path:
    return repos_dir / f"{app_name}.git"


def hook_script(python: str) -> str:
    return HOOK.format(python=shlex.quote(python))


def install_hook(repo: Path, python: str) -> None:
    """Write hooks/pre-receive unless it is already this exact script."""
    hook = repo / "hooks" / "pre-receive"
    script = hook_script(python)
    try:
        if hook.read_text() == script:
            return
    except FileNotFoundError:
        pass
    hook.parent.mkdir(exist_ok=True)
    temp = hook.with_name(f".pre-receive.{secrets.token_hex(4)}")
    temp.write_text(script)
    temp.chmod(0o755)
    temp.replace(hook)


def _git(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [git_binary(), "--git-dir", str(repo), *args],
        env=env,
        check=False,
        timeout=GIT_TIMEOUT,
        capture_output=True,
        text=True,
    )


def limit_pushes(repos_dir: Path, repo: Path, max_bytes: int) -> None:
    """receive.maxInputSize: git refuses a pushed pack larger than this (no disk filled)."""
    env = git_env(repos_dir, repo)
    key = "receive.maxInputSize"
    if _git(repo, env, "config", "--get", key).stdout.strip() == str(max_bytes):
        return  # read only: most requests change nothing
    result = _git(repo, env, "config", key, str(max_bytes))
    if result.returncode != 0:
        raise OSError(f"git config {key} failed in {repo}: {result.stderr.strip()}")


def ensure_repo(
    repos_dir: Path,
    app_name: str,
    python: str = sys.executable,
    *,
    max_push_bytes: int | None = None,
) -> Path:
    """The app's bare repository, created (atomically) if it does not exist yet; pushes to it
    are capped at `max_push_bytes` (set on every call, so existing repositories get it too)."""
    path = repo_path(repos_dir, app_name)
    with _creating:
        if not (path / "HEAD").is_file():
            repos_dir.mkdir(parents=True, exist_ok=True)
            temp = repos_dir / f".{app_name}.{secrets.token_hex(4)}.git"
            env = git_env(repos_dir, temp)
            try:
                for argv in (
                    [git_binary(), "init", "--quiet", "--bare", "--initial-branch=main", str(temp)],
                    [git_binary(), "--git-dir", str(temp), "config", "http.receivepack", "true"],
                ):
                    subprocess.run(
                        argv, env=env, check=True, timeout=GIT_TIMEOUT, capture_output=True
                    )
                install_hook(temp, python)
                temp.rename(path)
            finally:
                if temp.exists():
                    shutil.rmtree(temp)
        install_hook(path, python)
        if max_push_bytes is not None:
            limit_pushes(repos_dir, path, max_push_bytes)
    return path
