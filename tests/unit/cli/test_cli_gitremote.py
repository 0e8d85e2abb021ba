from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kapal.cli import gitremote


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
    }


@pytest.fixture
def repo(tmp_path: Path, environ: dict[str, str]) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], env=environ, check=True, timeout=30)
    return path


def git(repo: Path, environ: dict[str, str], *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=environ, check=True, timeout=30)


@pytest.mark.parametrize(
    ("url", "app"),
    [
        ("http://localhost:5000/demo.git", "demo"),
        ("http://localhost:5000/demo.git/", "demo"),
        ("https://git.heroku.com/serene-caverns-82714.git", "serene-caverns-82714"),
        ("git@heroku.com:demo.git", "demo"),
        ("http://localhost:5000/demo", None),
        ("http://localhost:5000/.git", None),
    ],
)
def test_app_from_url(url: str, app: str | None) -> None:
    assert gitremote.app_from_url(url) == app


def test_no_repository_means_no_app(tmp_path: Path, environ: dict[str, str]) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    assert gitremote.in_work_tree(outside, environ) is False
    assert gitremote.remotes(outside, environ) == {}
    assert gitremote.app_from_remotes(outside, environ) is None


def test_kapal_remote_wins_over_heroku(repo: Path, environ: dict[str, str]) -> None:
    git(repo, environ, "remote", "add", "origin", "https://github.com/me/other.git")
    assert gitremote.app_from_remotes(repo, environ) is None
    git(repo, environ, "remote", "add", "heroku", "https://git.heroku.com/old-app.git")
    assert gitremote.app_from_remotes(repo, environ) == "old-app"
    git(repo, environ, "remote", "add", "kapal", "http://localhost:5000/new-app.git")
    assert gitremote.app_from_remotes(repo, environ) == "new-app"
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    assert gitremote.app_from_remotes(sub, environ) == "new-app"


def test_add_set_and_remove(repo: Path, environ: dict[str, str]) -> None:
    assert gitremote.in_work_tree(repo, environ) is True
    gitremote.set_remote(repo, environ, "kapal", "http://localhost:5000/a.git")
    gitremote.set_remote(repo, environ, "kapal", "http://localhost:5000/b.git")
    gitremote.add_remote(repo, environ, "staging", "http://localhost:5000/b.git")
    gitremote.add_remote(repo, environ, "origin", "https://github.com/me/b.git")
    assert gitremote.remotes(repo, environ)["kapal"] == "http://localhost:5000/b.git"
    removed = gitremote.remove_remotes(repo, environ, "http://localhost:5000/b.git")
    assert sorted(removed) == ["kapal", "staging"]
    assert gitremote.remotes(repo, environ) == {"origin": "https://github.com/me/b.git"}
    with pytest.raises(gitremote.GitError):
        gitremote.add_remote(repo, environ, "origin", "x")
