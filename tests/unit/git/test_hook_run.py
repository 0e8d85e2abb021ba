"""The hook's decisions that need no API: refusals and a missing environment."""

from __future__ import annotations

import io

from kapal.git.hook import run

NEW = "b" * 40
ZERO = "0" * 40
ENV = {"KAPAL_API_URL": "http://127.0.0.1:9", "KAPAL_TOKEN": "t", "KAPAL_APP": "a"}


def test_pushing_another_branch_is_refused() -> None:
    out = io.BytesIO()
    assert run(f"{ZERO} {NEW} refs/heads/feature", ENV, out) == 1
    assert out.getvalue() == b" !     Push to main (or master) to deploy; you pushed feature.\n"


def test_a_hook_not_started_by_kapal_refuses() -> None:
    out = io.BytesIO()
    assert run(f"{ZERO} {NEW} refs/heads/main\n", {}, out) == 1
    assert b"not started by Kapal" in out.getvalue()


def test_an_unreachable_api_fails_the_push_with_a_message(tmp_path: object) -> None:
    out = io.BytesIO()
    # git archive fails first here: there is no repository in this environment.
    env = {**ENV, "GIT_DIR": "/nonexistent", "PATH": "/usr/bin:/bin"}
    assert run(f"{ZERO} {NEW} refs/heads/main\n", env, out) == 1
    assert b" !     Push failed: git archive failed" in out.getvalue()
