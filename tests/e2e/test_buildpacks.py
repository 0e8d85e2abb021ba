"""A third-party style shell buildpack, set with `kapal buildpacks:add`, builds a static site
that the router then serves: the classic buildpack API end to end."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.kapal_server import KapalServer, new_user
from tests.e2e.test_tutorial import wait_for

pytestmark = pytest.mark.e2e

BUILDPACK = Path(__file__).parents[1] / "buildpacks" / "static"


def test_a_static_site_buildpack_deploys_and_serves(kapal_server: KapalServer) -> None:
    frank = new_user(kapal_server, "frank")
    frank.kapal("signup", "--email", "frank@example.com", input="frank's password\n")
    # The buildpack as a git repository (on this machine: the network reaches no git host),
    # where the build user can read it.
    origin = kapal_server.root / "buildpacks" / "static"
    shutil.copytree(BUILDPACK, origin)
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-qm", "buildpack")):
        frank.git(*args, cwd=origin)
    subprocess.run(["chmod", "-R", "o+rX", str(kapal_server.root / "buildpacks")], check=True)
    url = f"file://{origin}#main"
    repo = frank.checkout("static-site")
    frank.kapal("create", "frank-static", cwd=repo)

    added = frank.kapal("buildpacks:add", url, cwd=repo)
    assert f"will use {url}." in added.stdout
    listed = frank.kapal("buildpacks", cwd=repo).stdout
    assert listed == f"=== ⬢ frank-static Buildpack URL\n\n{url}\n"

    push = frank.git("push", "kapal", "main", cwd=repo)
    assert "remote: -----> Static HTML app detected" in push.stderr, push.stderr
    assert "remote:        Default types for buildpack -> web" in push.stderr

    page = wait_for(lambda: (r := frank.get("frank-static")).status_code == 200 and r, 90)
    assert "Served by a classic buildpack" in page.text
    ps = frank.kapal("ps", cwd=repo).stdout
    assert "python3 -m http.server" in ps

    cleared = frank.kapal("buildpacks:clear", cwd=repo)
    assert "will detect its buildpack" in cleared.stdout
    assert "has no buildpacks set" in frank.kapal("buildpacks", cwd=repo).stdout
