"""Fetching a classic buildpack cannot be made to run what an earlier buildpack of the same
build wrote: the buildpacks share their directory (also their HOME, writable in the jail), so
bin/detect can leave a git config there with hooks (core.hooksPath, a template directory,
core.fsmonitor) for the next buildpack's `git clone`, or a link in the next buildpack's place.
Neither may run anything, least of all outside the jail, nor fetch through the link."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.integration.git.pushkit import Pusher
from tests.integration.git.test_buildpacks_push import BUILDPACKS, SITE, use
from tests.integration.git.test_git_push import push

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None,
    reason="builds are jailed only when Kapal is root and bubblewrap is installed",
)

# bin/detect of the first buildpack: HOME is the buildpacks' directory, which the next
# buildpack's fetch used as its git's HOME and global config.
PLANT_HOOKS = r"""#!/bin/sh
set -e
hook="$HOME/hooks/post-checkout"
mkdir -p "$HOME/hooks" "$HOME/template/hooks"
printf '#!/bin/sh\ntouch %s\n' "@MARKER@" > "$hook"
chmod 755 "$hook"
cp "$hook" "$HOME/template/hooks/post-checkout"
cp "$hook" "$HOME/fsmonitor"
rm -f "$HOME/.gitconfig"
cat > "$HOME/.gitconfig" <<CONFIG
[core]
	hooksPath = $HOME/hooks
	fsmonitor = $HOME/fsmonitor
[init]
	templateDir = $HOME/template
[safe]
	directory = *
CONFIG
echo Planter
"""

# bin/detect of the first buildpack: the second buildpack's directory, a link to one of its own.
PLANT_LINK = r"""#!/bin/sh
mkdir -p "$HOME/elsewhere"
ln -s "$HOME/elsewhere" "$HOME/2"
echo Planter
"""


def planter(open_dir: Path, detect: str) -> Path:
    """A path buildpack whose bin/detect is `detect` and whose bin/compile does nothing."""
    buildpack = open_dir / "planter"
    (buildpack / "bin").mkdir(parents=True)
    (buildpack / "bin" / "detect").write_text(detect)
    (buildpack / "bin" / "compile").write_text("#!/bin/sh\necho '-----> Planted'\n")
    for path in (buildpack, buildpack / "bin", *(buildpack / "bin").iterdir()):
        path.chmod(0o755)
    return buildpack


def static_repository(open_dir: Path) -> Path:
    """A git repository of the static test buildpack, readable by the build user."""
    origin = open_dir / "static-buildpack"
    shutil.copytree(BUILDPACKS / "static", origin)
    git = ["git", "-C", str(origin), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "static buildpack"], check=True)
    subprocess.run(["chmod", "-R", "o+rX", str(origin)], check=True)
    return origin


def test_hooks_an_earlier_buildpack_wrote_do_not_run_when_the_next_is_fetched(
    pusher: Pusher, open_dir: Path
) -> None:
    # Where the hook would leave its mark: a directory the app's uid may write in outside
    # the jail (its /tmp is its own, and this is not bound in it).
    marks = open_dir / "marks"
    marks.mkdir()
    marks.chmod(0o1777)
    marker = marks / "hook-ran"
    first = planter(open_dir, PLANT_HOOKS.replace("@MARKER@", str(marker)))
    origin = static_repository(open_dir)
    use(pusher, str(first), f"file://{origin}")
    repo = pusher.checkout(files={**SITE, "Procfile": "web: python3 -m http.server $PORT\n"})

    status, output = push(pusher, repo)

    assert not marker.exists(), output
    assert list(marks.iterdir()) == []
    assert status == 0, output
    steps = [line for line in output.splitlines() if line.startswith("remote: -----> ")]
    assert f"remote: -----> Using buildpack: file://{origin}" in steps
    assert "remote: -----> Static HTML app detected" in steps


def test_a_link_an_earlier_buildpack_left_in_the_next_ones_place_fails_the_build(
    pusher: Pusher, open_dir: Path
) -> None:
    first = planter(open_dir, PLANT_LINK)
    origin = static_repository(open_dir)
    use(pusher, str(first), f"file://{origin}")
    repo = pusher.checkout(files={**SITE, "Procfile": "web: python3 -m http.server $PORT\n"})

    status, output = push(pusher, repo)

    assert status != 0, output
    assert "(pre-receive hook declined)" in output
    assert pusher.remote_ref(repo) == ""
    assert f"remote:  !     Failed to fetch the buildpack file://{origin}" in output
    assert "exists already (made by an earlier buildpack)" in output, output
    assert "Static HTML app detected" not in output
    assert [r.version for r in pusher.releases()] == [1, 2]  # those of a new app only
