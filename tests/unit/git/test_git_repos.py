from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kapal.git.repos import ensure_repo, git_env, hook_script


def git_config(repo: Path, key: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), "config", key],
        env=git_env(repo.parent, repo),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def test_a_repo_is_made_on_first_use_with_the_hook(tmp_path: Path) -> None:
    repo = ensure_repo(tmp_path / "repos", "my-app")
    assert repo == tmp_path / "repos" / "my-app.git"
    assert git_config(repo, "core.bare") == "true"
    assert git_config(repo, "http.receivepack") == "true"
    hook = repo / "hooks" / "pre-receive"
    assert hook.read_text() == hook_script(sys.executable)
    assert f"exec {sys.executable} -m kapal.git.hook" in hook.read_text()
    assert hook.stat().st_mode & 0o111
    assert (repo / "HEAD").read_text().strip() == "ref: refs/heads/main"
    assert [p.name for p in (tmp_path / "repos").iterdir()] == ["my-app.git"]  # no leftovers


def test_ensure_repo_is_idempotent_and_refreshes_the_hook(tmp_path: Path) -> None:
    repo = ensure_repo(tmp_path / "repos", "my-app")
    (repo / "marker").write_text("kept")
    again = ensure_repo(tmp_path / "repos", "my-app", python="/opt/other python/bin/python")
    assert again == repo
    assert (repo / "marker").read_text() == "kept"
    assert (
        "exec '/opt/other python/bin/python' -m kapal.git.hook"
        in (repo / "hooks" / "pre-receive").read_text()
    )


def test_git_runs_without_user_or_system_config(tmp_path: Path) -> None:
    env = git_env(tmp_path, tmp_path / "x.git")
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["HOME"] == str(tmp_path)
    assert env["GIT_CONFIG_KEY_0"] == "safe.directory"
    assert env["GIT_CONFIG_VALUE_0"] == str(tmp_path / "x.git")


def test_pushes_are_capped_also_in_existing_repos(tmp_path: Path) -> None:
    repo = ensure_repo(tmp_path / "repos", "my-app")
    assert (
        subprocess.run(  # made before the cap: none set
            ["git", "--git-dir", str(repo), "config", "receive.maxInputSize"],
            env=git_env(repo.parent, repo),
            timeout=30,
        ).returncode
        == 1
    )
    ensure_repo(tmp_path / "repos", "my-app", max_push_bytes=2048)
    assert git_config(repo, "receive.maxInputSize") == "2048"
    ensure_repo(tmp_path / "repos", "my-app", max_push_bytes=4096)
    assert git_config(repo, "receive.maxInputSize") == "4096"

    # A real push of a pack over the cap is refused by git itself.
    work = tmp_path / "work"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@example.com",
    }
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], env=env, check=True, timeout=30)
    (work / "big.bin").write_bytes(os.urandom(64 * 1024))  # does not compress
    for argv in (["git", "add", "-A"], ["git", "commit", "-qm", "big"]):
        subprocess.run(argv, cwd=work, env=env, check=True, timeout=30)
    push = subprocess.run(
        ["git", "push", str(repo), "main"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert push.returncode != 0
    assert "pack exceeds maximum allowed size" in push.stderr
    assert not (repo / "refs" / "heads" / "main").exists()
