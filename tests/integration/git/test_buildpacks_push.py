"""Classic buildpacks set on an app, run unchanged by a `git push`: from a directory on this
machine and from a git URL, several in order, and the ways one can fail."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.integration.git.pushkit import Pusher
from tests.integration.git.test_git_push import assert_rejected, push

from kapal.services.auth import authenticate
from kapal.services.buildpacks import set_buildpacks
from kapal.services.config import update_config
from kapal.store.models import Slug

BUILDPACKS = Path(__file__).parents[2] / "buildpacks"
SITE = {"index.html": "<h1>Hello from a static site</h1>\n"}
WEB = "python3 -m http.server $PORT --bind 127.0.0.1 --directory public"


@pytest.fixture
def buildpacks(open_dir: Path) -> Path:
    """The test buildpacks where the build user can read them."""
    target = open_dir / "buildpacks"
    shutil.copytree(BUILDPACKS, target)
    target.chmod(0o755)
    return target


def use(pusher: Pusher, *urls: str) -> None:
    user = authenticate(pusher.api.ctx, pusher.token)
    set_buildpacks(pusher.api.ctx, user, pusher.app.name, list(urls))


def slug_of_latest_release(pusher: Pusher) -> Slug:
    release = pusher.releases()[-1]
    with pusher.api.ctx.store.session() as s:
        slug = s.get(Slug, release.slug_id)
        assert slug is not None
        return slug


def test_a_shell_buildpack_from_a_path_builds_a_static_site(
    pusher: Pusher, buildpacks: Path
) -> None:
    use(pusher, str(buildpacks / "static"))
    user = authenticate(pusher.api.ctx, pusher.token)
    update_config(pusher.api.ctx, user, "alice-app", {"SITE_TITLE": "My site"})
    repo = pusher.checkout(files=SITE)

    status, output = push(pusher, repo)

    assert status == 0, output
    lines = output.splitlines()
    start = lines.index("remote: -----> Static HTML app detected")
    assert lines[start + 1 : start + 4] == [
        "remote: -----> Publishing the site",
        "remote:        Title from the config vars: My site",
        "remote:        Build number 1 with this cache, on stack heroku-22",
    ]
    assert "remote:        Default types for buildpack -> web" in lines
    assert "Procfile declares types" not in output
    assert slug_of_latest_release(pusher).process_types == {"web": WEB}

    # The cache is kept for the next build.
    (repo / "index.html").write_text("<h1>Changed</h1>\n")
    pusher.git("commit", "-qam", "change", cwd=repo)
    status, output = push(pusher, repo)
    assert status == 0, output
    assert "remote:        Build number 2 with this cache, on stack heroku-22" in output


def test_buildpacks_from_a_git_url_and_a_path_run_in_order(
    pusher: Pusher, buildpacks: Path, open_dir: Path
) -> None:
    # A git repository of the static buildpack, with the buildpack on a branch.
    origin = open_dir / "static-buildpack"
    shutil.copytree(buildpacks / "static", origin)
    git = ["git", "-C", str(origin), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "checkout", "-q", "-b", "v1"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "static buildpack"], check=True)
    subprocess.run(["chmod", "-R", "o+rX", str(origin)], check=True)
    use(pusher, f"file://{origin}#v1", str(buildpacks / "stamp"))
    repo = pusher.checkout(files={**SITE, "Procfile": "web: python3 -m http.server $PORT\n"})

    status, output = push(pusher, repo)

    assert status == 0, output
    steps = [line for line in output.splitlines() if line.startswith("remote: -----> ")]
    assert steps[:6] == [
        f"remote: -----> Using buildpack: file://{origin}#v1",
        "remote: -----> Static HTML app detected",
        "remote: -----> Publishing the site",
        f"remote: -----> Using buildpack: {buildpacks / 'stamp'}",
        "remote: -----> Stamp app detected",
        "remote: -----> Stamping public",  # what the first buildpack exported
    ]
    # The Procfile wins over the default types; the last buildpack declares none.
    assert slug_of_latest_release(pusher).process_types == {"web": "python3 -m http.server $PORT"}


def test_the_built_in_python_buildpack_runs_by_name_before_a_classic_one(
    pusher: Pusher, buildpacks: Path
) -> None:
    use(pusher, "heroku/python", str(buildpacks / "static"))
    repo = pusher.checkout(
        files={**SITE, "requirements.txt": "", "Procfile": "web: python -m http.server $PORT\n"}
    )
    status, output = push(pusher, repo)
    assert status == 0, output
    steps = [line for line in output.splitlines() if line.startswith("remote: -----> ")]
    assert steps[:2] == [
        "remote: -----> Using buildpack: heroku/python",
        "remote: -----> Python app detected",
    ]
    static = steps.index(f"remote: -----> Using buildpack: {buildpacks / 'static'}")
    assert steps[static + 1] == "remote: -----> Static HTML app detected"
    assert static > steps.index("remote: -----> Python app detected")


def test_a_buildpack_that_cannot_be_fetched_rejects_the_push(
    pusher: Pusher, open_dir: Path
) -> None:
    missing = f"file://{open_dir}/no-such-buildpack.git"
    use(pusher, missing)
    repo = pusher.checkout(files=SITE)
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert f"remote:  !     Failed to fetch the buildpack {missing}" in output


def test_a_directory_without_bin_compile_is_not_a_buildpack(
    pusher: Pusher, buildpacks: Path
) -> None:
    (buildpacks / "static" / "bin" / "compile").unlink()
    use(pusher, str(buildpacks / "static"))
    repo = pusher.checkout(files=SITE)
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert f"remote:  !     {buildpacks / 'static'} is not a buildpack: it has no bin/compile." in (
        output
    )


def test_an_app_the_buildpack_does_not_detect_is_rejected(pusher: Pusher, buildpacks: Path) -> None:
    use(pusher, str(buildpacks / "static"))
    repo = pusher.checkout(files={"README": "no index.html here\n"})
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert f"remote:  !     App not compatible with buildpack: {buildpacks / 'static'}" in output


def test_a_failing_bin_compile_rejects_the_push_with_its_output(
    pusher: Pusher, buildpacks: Path
) -> None:
    (buildpacks / "static" / "bin" / "compile").write_text(
        "#!/bin/sh\necho '-----> About to fail'\necho 'something broke' >&2\nexit 3\n"
    )
    use(pusher, str(buildpacks / "static"))
    repo = pusher.checkout(files=SITE)
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    lines = output.splitlines()
    assert "remote: -----> About to fail" in lines
    assert "remote: something broke" in lines
    assert (
        f"remote:  !     The buildpack {buildpacks / 'static'} failed: "
        "bin/compile exited with status 3." in lines
    )
    assert "remote:  !     Push rejected, failed to compile Static HTML app." in lines


def test_default_process_types_must_be_valid(pusher: Pusher, buildpacks: Path) -> None:
    (buildpacks / "static" / "bin" / "release").write_text(
        "#!/bin/sh\necho 'default_process_types:'\necho '  \"bad name!\": run'\n"
    )
    use(pusher, str(buildpacks / "static"))
    repo = pusher.checkout(files=SITE)
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert "default_process_types must map process type names to one-line commands." in output


def test_a_buildpack_cannot_make_the_platform_read_a_file_for_it(
    pusher: Pusher, buildpacks: Path
) -> None:
    """bin/detect runs as the build user and may plant links in the app; what the platform
    reads there afterwards (the Procfile, version files) is never read through a link."""
    (buildpacks / "static" / "bin" / "detect").write_text(
        '#!/bin/sh\nln -sf /etc/shadow "$1/Procfile"\nln -sf /etc/shadow "$1/runtime.txt"\n'
        "echo Sneaky\n"
    )
    use(pusher, str(buildpacks / "static"), "heroku/python")
    repo = pusher.checkout(files={**SITE, "requirements.txt": ""})
    status, output = push(pusher, repo)
    assert_rejected(pusher, repo, output, status)
    assert "remote:  !     Procfile in the app is a link; make it a file." in output
    assert "root:" not in output


def test_env_dir_files_are_the_build_users_and_private(pusher: Pusher, buildpacks: Path) -> None:
    (buildpacks / "static" / "bin" / "compile").write_text(
        '#!/bin/sh\necho "-----> ENV_DIR"\ncd "$3" && stat -c "%U %a %n" . * | sed "s/^/       /"\n'
    )
    user = authenticate(pusher.api.ctx, pusher.token)
    update_config(pusher.api.ctx, user, "alice-app", {"SECRET_KEY": "s3cret"})
    use(pusher, str(buildpacks / "static"))
    repo = pusher.checkout(files=SITE)
    status, output = push(pusher, repo)
    assert status == 0, output
    # As root, the app's own uid, which the build jail's /etc/passwd names `dyno`.
    owner = "dyno" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert f"remote:        {owner} 700 ." in output
    assert f"remote:        {owner} 600 SECRET_KEY" in output
    assert "s3cret" not in output
