"""A third-party style shell buildpack, set with `kapal buildpacks:add`, builds a static site
that the router then serves: the classic buildpack API end to end."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import httpx
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

    # A build that grabs memory without end is stopped at its cap, and the running app
    # answers every request meanwhile.
    hog = kapal_server.root / "buildpacks" / "hog"
    (hog / "bin").mkdir(parents=True)
    (hog / "bin" / "detect").write_text("#!/bin/sh\necho Hungry\n")
    (hog / "bin" / "compile").write_text(
        "#!/bin/sh\nexec python3 -c 'b = []\nwhile True: b.append(bytearray(8 << 20))'\n"
    )
    subprocess.run(["chmod", "-R", "a+rX,a+x", str(hog)], check=True)
    hungry = frank.checkout("static-site", "hungry")
    frank.kapal("create", "frank-hungry", "--remote", "kapal", cwd=hungry)
    frank.kapal("buildpacks:add", str(hog), cwd=hungry)
    answers: list[int | str] = []
    pushing = threading.Event()
    pushing.set()

    def load() -> None:
        while pushing.is_set():
            try:
                answers.append(frank.get("frank-static").status_code)
            except httpx.HTTPError as exc:
                answers.append(type(exc).__name__)

    loop = threading.Thread(target=load)
    loop.start()
    try:
        refused = frank.git("push", "kapal", "main", cwd=hungry, check=False)
    finally:
        pushing.clear()
        loop.join(30)
    assert refused.returncode != 0
    assert "The build ran out of memory: its processes may use 512 MB" in refused.stderr
    assert len(answers) > 10 and set(answers) == {200}, answers

    cleared = frank.kapal("buildpacks:clear", cwd=repo)
    assert "will detect its buildpack" in cleared.stdout
    assert "has no buildpacks set" in frank.kapal("buildpacks", cwd=repo).stdout
