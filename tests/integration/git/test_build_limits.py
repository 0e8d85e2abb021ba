"""Builds cannot take what running apps need: a memory cap, a time limit, one at a time."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.git.pushkit import Pusher
from tests.integration.git.test_buildpacks_push import SITE, use
from tests.integration.git.test_git_push import assert_rejected, push

from kapal.build.cgroup import BuildCgroup

HOG = """#!/bin/sh
echo "-----> Allocating far more than a build may use"
exec python3 -c 'blocks = []
while True:
    blocks.append(bytearray(8 << 20))'
"""
SLOW = "#!/bin/sh\necho '-----> Taking my time'\nsleep 30\n"


def buildpack(root: Path, compile_script: str) -> Path:
    """A buildpack that detects any app and compiles with `compile_script`."""
    bin_dir = root / "bp" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "detect").write_text("#!/bin/sh\necho Anything\n")
    (bin_dir / "compile").write_text(compile_script)
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    (root / "bp").chmod(0o755)
    return root / "bp"


def test_a_build_over_its_memory_cap_is_stopped_and_named(pusher: Pusher, open_dir: Path) -> None:
    probe = BuildCgroup.create("probe", 1 << 30) if os.geteuid() == 0 else None
    if probe is None:
        pytest.skip("builds get a memory cap only where Kapal (root) can make a memory cgroup")
    probe.remove()
    settings = pusher.api.ctx.settings
    pusher.api.ctx.settings = dataclasses.replace(settings, build_memory=100 * 2**20)
    use(pusher, str(buildpack(open_dir, HOG)))
    repo = pusher.checkout(files={**SITE, "Procfile": "web: python3 -m http.server $PORT\n"})

    status, output = push(pusher, repo)

    assert_rejected(pusher, repo, output, status)
    assert "remote: -----> Allocating far more than a build may use" in output
    assert (
        "remote:  !     The build ran out of memory: its processes may use 100 MB together "
        "(KAPAL_BUILD_MEMORY), and the kernel stopped one that asked for more." in output
    )


def test_a_build_over_its_time_limit_is_stopped(pusher: Pusher, open_dir: Path) -> None:
    settings = pusher.api.ctx.settings
    pusher.api.ctx.settings = dataclasses.replace(settings, build_timeout=2)
    use(pusher, str(buildpack(open_dir, SLOW)))
    repo = pusher.checkout(files=SITE)

    status, output = push(pusher, repo)

    assert_rejected(pusher, repo, output, status)
    assert "remote: -----> Taking my time" in output
    assert "remote:  !     Compiling the app took longer than the 2 second limit." in output


def test_a_second_push_waits_its_turn_and_says_so(
    make_pusher: Callable[[str], Pusher], open_dir: Path
) -> None:
    """One build at a time by default, whichever apps they are for."""
    alice, bob = make_pusher("alice"), make_pusher("bob")
    slow = str(buildpack(open_dir, "#!/bin/sh\nsleep 3\n"))
    use(alice, slow)
    use(bob, slow)
    files = {**SITE, "Procfile": "web: python3 -m http.server $PORT\n"}
    first, second = alice.checkout(files=files), bob.checkout(files=files)
    results: list[tuple[int, str]] = []
    thread = threading.Thread(target=lambda: results.append(push(alice, first)))
    thread.start()
    tmp = alice.api.ctx.settings.builds_dir / "tmp"
    deadline = time.monotonic() + 60
    while not (tmp.is_dir() and any(tmp.glob("*.buildpacks"))):  # alice's build is running
        assert thread.is_alive() and time.monotonic() < deadline, results
        thread.join(0.05)
    status, output = push(bob, second)
    thread.join(60)
    assert results and results[0][0] == 0, results
    assert status == 0, output
    assert "remote: -----> Queued: this build starts when the build before it finishes." in output
    assert "Queued" not in results[0][1]
