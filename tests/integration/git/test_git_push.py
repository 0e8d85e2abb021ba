"""`git push` over HTTP to a running API: the hook builds, releases, or rejects the push."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import select
from tests.integration.git.pushkit import Api, Pusher, SettleRelease

from kapal.services.auth import authenticate
from kapal.services.config import update_config
from kapal.store.models import Build, Slug


def push(pusher: Pusher, repo: Path, refspec: str = "main") -> tuple[int, str]:
    result = pusher.git("push", pusher.remote, refspec, cwd=repo, check=False)
    # git pads each remote line with spaces (to overwrite progress output on a terminal).
    return result.returncode, "\n".join(line.rstrip() for line in result.stderr.splitlines())


def test_pushing_flask_hello_builds_and_releases_it(pusher: Pusher) -> None:
    repo = pusher.checkout("flask-hello")
    commit = pusher.git("rev-parse", "HEAD", cwd=repo).stdout.strip()

    status, output = push(pusher, repo)

    assert status == 0, output
    lines = output.splitlines()
    for expected in (
        "remote: Compressing source files... done.",
        "remote: Building source:",
        "remote: -----> Python app detected",
        "remote: -----> Discovering process types",
        "remote:        Procfile declares types -> web",
        "remote: -----> Compressing...",
        "remote: -----> Launching...",
        "remote:        Released v3",
        "remote:        http://alice-app.localhost:8080/ deployed to Kapal",
        "remote: Verifying deploy... done.",
    ):
        assert expected in lines, output
    assert any(line.startswith("remote: -----> Installing dependencies with uv ") for line in lines)
    assert any(line.startswith("remote:        Done: ") for line in lines)
    assert "Failed to hardlink" not in output  # uv copies out of its cache, and says nothing
    assert " * [new branch]      main -> main" in output
    assert pusher.remote_ref(repo) == f"{commit}\trefs/heads/main"

    releases = pusher.releases()
    assert [r.version for r in releases] == [1, 2, 3]
    v3 = releases[-1]
    assert v3.description == f"Deploy {commit[:8]}"
    assert v3.status == "succeeded"
    with pusher.api.ctx.store.session() as s:
        slug = s.get(Slug, v3.slug_id)
        assert slug is not None
        assert slug.commit == commit
        assert slug.process_types == {"web": "gunicorn app:app --bind 127.0.0.1:$PORT"}
        assert slug.checksum.startswith("SHA256:")
        slug_file = pusher.api.ctx.settings.slugs_dir / f"{slug.checksum[7:]}.tar.gz"
        assert slug_file.stat().st_size == slug.size
        # The compiled tree is left for the agent, so the first release need not unpack.
        built = pusher.api.ctx.settings.dynos_dir / pusher.app.id / f".built-{slug.checksum[7:]}"
        assert (built / "Procfile").is_file() and (built / ".venv").is_dir()
        build = s.scalar(select(Build).where(Build.app_id == pusher.app.id))
        assert build is not None
        assert (build.status, build.slug_id, build.release_id) == ("succeeded", slug.id, v3.id)

    # The build stays listed, and its output can be read again later (builds:output).
    auth = {"Authorization": f"Bearer {pusher.token}"}
    listed = httpx.get(f"{pusher.api.url}/apps/alice-app/builds", headers=auth).json()
    assert [(b["id"], b["status"]) for b in listed] == [(build.id, "succeeded")]
    assert listed[0]["release"] == {"id": v3.id, "version": 3, "status": "succeeded"}
    assert listed[0]["source_blob"]["version"] == commit
    replay = httpx.get(listed[0]["output_stream_url"].replace("localhost", "127.0.0.1")).text
    assert "-----> Python app detected" in replay and "Released v3" in replay

    # A clone gets the pushed commit back (git-upload-pack through the same bridge).
    clone = pusher.home / "clone"
    pusher.git("clone", "-q", pusher.remote, str(clone), cwd=pusher.home)
    assert pusher.git("rev-parse", "HEAD", cwd=clone).stdout.strip() == commit
    assert (clone / "Procfile").is_file()


def assert_rejected(pusher: Pusher, repo: Path, output: str, status: int) -> None:
    assert status != 0, output
    assert " ! [remote rejected] main -> main (pre-receive hook declined)" in output
    assert pusher.remote_ref(repo) == ""  # the branch was never created
    assert [r.version for r in pusher.releases()] == [1, 2]


def test_a_malformed_procfile_rejects_the_push(pusher: Pusher) -> None:
    repo = pusher.checkout("bad-procfile")
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert 'remote:  !     Procfile line 2: expected "<process type>: <command>"' in output
    assert "remote:  !     Push rejected, failed to compile Python app." in output
    with pusher.api.ctx.store.session() as s:
        assert s.scalar(select(Build.status)) == "failed"


def test_a_missing_procfile_rejects_the_push(pusher: Pusher) -> None:
    repo = pusher.checkout("no-procfile")
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert "remote:  !     No Procfile found in the root of the app." in output


def test_unresolvable_requirements_reject_the_push(pusher: Pusher) -> None:
    repo = pusher.checkout("failing-requirements")
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert "kapal-no-such-package-0f3c9b" in output
    assert "remote:  !     Push rejected, failed to compile Python app." in output


def test_an_app_with_no_language_is_rejected(pusher: Pusher) -> None:
    repo = pusher.checkout(files={"README": "just words\n"})
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert "remote:  !     No default language could be detected for this app." in output


def test_a_failed_push_leaves_the_previous_deploy_in_place(pusher: Pusher) -> None:
    repo = pusher.checkout(
        files={"requirements.txt": "", "Procfile": "web: python -m http.server $PORT\n"}
    )
    status, output = push(pusher, repo)
    assert status == 0, output
    deployed = pusher.remote_ref(repo)
    (repo / "Procfile").write_text("web python -m http.server\n")
    pusher.git("commit", "-qam", "break it", cwd=repo)
    status, output = push(pusher, repo)
    assert status != 0
    assert "Procfile line 1" in output
    assert pusher.remote_ref(repo) == deployed
    assert [r.version for r in pusher.releases()] == [1, 2, 3]


def test_pushing_another_branch_is_refused(pusher: Pusher) -> None:
    repo = pusher.checkout(files={"requirements.txt": "", "Procfile": "web: x\n"})
    status, output = push(pusher, repo, "main:feature")
    assert status != 0
    assert "remote:  !     Push to main (or master) to deploy; you pushed feature." in output
    assert pusher.remote_ref(repo, "refs/heads/feature") == ""
    assert [r.version for r in pusher.releases()] == [1, 2]


def test_a_release_phase_that_fails_rejects_the_push(
    pusher: Pusher, settle_release: SettleRelease
) -> None:
    repo = pusher.checkout("failing-release")
    agent = settle_release(pusher.app, "failed", "release phase: failing on purpose\n")
    status, output = push(pusher, repo)
    agent.join(10)
    assert_rejected_after_release(pusher, repo, output, status)
    lines = output.splitlines()
    assert "remote:        Running release command..." in lines
    assert "remote:        release phase: failing on purpose" in lines
    assert "remote:  !     Release command failed; v3 was not deployed." in lines
    assert "Released v3" not in output
    assert [(r.version, r.status) for r in pusher.releases()][-1] == (3, "failed")


def assert_rejected_after_release(pusher: Pusher, repo: Path, output: str, status: int) -> None:
    assert status != 0, output
    assert "(pre-receive hook declined)" in output
    assert pusher.remote_ref(repo) == ""


def test_a_release_phase_that_succeeds_deploys(
    pusher: Pusher, settle_release: SettleRelease
) -> None:
    repo = pusher.checkout(
        files={
            "requirements.txt": "",
            "Procfile": "release: echo migrating\nweb: python -m http.server $PORT\n",
        }
    )
    agent = settle_release(pusher.app, "succeeded", "migrating\n")
    status, output = push(pusher, repo)
    agent.join(10)
    assert status == 0, output
    lines = output.splitlines()
    assert "remote:        Procfile declares types -> release, web" in lines
    position = lines.index("remote:        Running release command...")
    assert lines[position + 1] == "remote:        migrating"
    assert "remote:        Released v3" in lines[position:]
    assert pusher.remote_ref(repo) != ""


def test_credentials_are_required(pusher: Pusher, api: Api) -> None:
    repo = pusher.checkout(files={"requirements.txt": "", "Procfile": "web: x\n"})
    anonymous = f"http://127.0.0.1:{api.port}/{pusher.app.name}.git"
    result = pusher.git("push", anonymous, "main", cwd=repo, check=False)
    assert result.returncode != 0
    assert "could not read Username" in result.stderr

    refs = f"{api.url}/{pusher.app.name}.git/info/refs?service=git-receive-pack"
    answer = httpx.get(refs)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="kapal"'
    assert httpx.get(refs, auth=("kapal", "wrong-token")).status_code == 401
    assert httpx.get(refs, auth=("anyone", pusher.token)).status_code == 200


def test_only_the_owner_may_push(make_pusher: Callable[[str], Pusher], api: Api) -> None:
    alice, bob = make_pusher("alice"), make_pusher("bob")
    refs = f"{api.url}/{alice.app.name}.git/info/refs?service=git-receive-pack"
    forbidden = httpx.get(refs, auth=("kapal", bob.token))
    assert forbidden.status_code == 403
    assert forbidden.json()["id"] == "forbidden"
    missing = httpx.get(
        f"{api.url}/no-such-app.git/info/refs?service=git-upload-pack", auth=("k", bob.token)
    )
    assert missing.status_code == 404
    dumb = httpx.get(f"{api.url}/{alice.app.name}.git/info/refs", auth=("k", alice.token))
    assert dumb.status_code == 404


def test_the_build_sees_the_apps_config_vars(pusher: Pusher) -> None:
    owner = authenticate(pusher.api.ctx, pusher.token)
    update_config(pusher.api.ctx, owner, pusher.app.name, {"DISABLE_COLLECTSTATIC": "1"})
    repo = pusher.checkout("django-static")

    status, output = push(pusher, repo)

    assert status == 0, output
    assert (
        "remote: -----> Skipping Django collectstatic since the config var "
        "DISABLE_COLLECTSTATIC is set." in output.splitlines()
    )


def test_a_link_out_of_the_repository_is_refused(pusher: Pusher) -> None:
    repo = pusher.checkout(files={"requirements.txt": "", "Procfile": "web: x\n"})
    (repo / "passwords").symlink_to("/etc/passwd")
    (repo / "up").symlink_to("../../..")
    pusher.git("add", "-A", cwd=repo)
    pusher.git("commit", "-qm", "links", cwd=repo)
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert "'passwords' is a link to an absolute path" in output


def test_a_file_name_that_is_not_utf8_is_refused(pusher: Pusher) -> None:
    repo = pusher.checkout(files={"requirements.txt": "", "Procfile": "web: x\n"})
    (repo / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name\n")
    pusher.git("add", "-A", cwd=repo)
    pusher.git("commit", "-qm", "latin-1 file name", cwd=repo)
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert (
        "remote:  !     Refusing to unpack the source: the file name 'caf\\xe9.txt' is not valid "
        "UTF-8; rename it (git mv) and push again." in output
    )


def test_a_push_or_a_slug_over_the_limit_is_refused(pusher: Pusher) -> None:
    settings = pusher.api.ctx.settings
    pusher.api.ctx.settings = dataclasses.replace(settings, slug_max_bytes=600_000)
    # A pushed pack over the limit: git itself refuses it before anything is written.
    repo = pusher.checkout(files={"requirements.txt": "", "Procfile": "web: x\n"})
    (repo / "noise.bin").write_bytes(os.urandom(1_500_000))  # does not compress
    pusher.git("add", "-A", cwd=repo)
    pusher.git("commit", "-qm", "big file", cwd=repo)
    status, output = push(pusher, repo)
    assert status != 0
    assert "remote: fatal: pack exceeds maximum allowed size" in output
    assert pusher.remote_ref(repo) == ""
    # A small push whose dependencies make the slug too large.
    repo = pusher.checkout("flask-hello")
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert "remote:  !     Compiled slug size is too large (max is 586K)." in output
