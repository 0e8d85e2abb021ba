"""The build jail, seen from inside by a classic buildpack pushed through the real API: it
runs as its app's uid with the app at /app, and sees nothing of the data directory it does
not need (the state database, other apps' caches)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from tests.integration.git.pushkit import Pusher
from tests.integration.git.test_git_push import push
from uv import find_uv_bin

from kapal.sandbox.jail import SYSTEM_TOP
from kapal.services.auth import authenticate
from kapal.services.buildpacks import set_buildpacks
from kapal.services.config import update_config
from kapal.system_users import RunAs

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("bwrap") is None,
    reason="builds are jailed only when Kapal is root and bubblewrap is installed",
)

# bin/compile BUILD_DIR CACHE_DIR ENV_DIR: what the build sees, one `key=value` line each.
PROBE = r"""#!/bin/sh
env_dir=$3
data=$(cat "$env_dir/PROBE_DATA")
seen() { if [ -e "$1" ]; then echo visible; else echo hidden; fi; }
writes() { if touch "$1" 2>/dev/null; then echo yes; else echo no; fi; }
echo "-----> Probing the jail"
echo "build_dir=$1"
echo "pwd=$(pwd)"
echo "uid=$(id -u)"
echo "user=$(id -un)"
echo "root=$(ls / | tr '\n' ' ')"
echo "data=$(ls -A "$data" | tr '\n' ' ')"
echo "state_db=$(seen "$(cat "$env_dir/PROBE_STATE_DB")")"
echo "other_cache=$(seen "$(cat "$env_dir/PROBE_OTHER_CACHE")")"
echo "own_cache=$(writes "$2/mine")"
echo "processes=$(ls /proc | grep -c '^[0-9]*$')"
echo "write_app=$(writes "$1/written-in-the-jail")"
echo "write_tmp=$(writes /tmp/probe)"
echo "write_usr=$(writes /usr/probe)"
echo "write_root=$(writes /probe)"
echo "write_data=$(writes "$data/probe")"
echo "write_env_dir=$(writes "$env_dir/probe")"
"""


@pytest.fixture
def probe(open_dir: Path) -> Path:
    buildpack = open_dir / "probe-buildpack"
    (buildpack / "bin").mkdir(parents=True)
    (buildpack / "bin" / "detect").write_text("#!/bin/sh\necho Probe\n")
    (buildpack / "bin" / "compile").write_text(PROBE)
    for script in (buildpack / "bin").iterdir():
        script.chmod(0o755)
    buildpack.chmod(0o755)
    (buildpack / "bin").chmod(0o755)
    return buildpack


def findings(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        if match := re.fullmatch(r"remote: (\w+)=(.*)", line):
            found[match.group(1)] = match.group(2).strip()
    return found


def test_a_build_runs_jailed_as_its_apps_uid_with_the_app_at_slash_app(
    pusher: Pusher, probe: Path
) -> None:
    settings = pusher.api.ctx.settings
    state_db = settings.data_dir / "k.db"  # the tests' state database (see conftest)
    assert state_db.is_file()
    other_cache = settings.build_cache("another-app")
    other_cache.mkdir(parents=True)
    (other_cache / "secret").write_text("another app's\n")
    (other_cache / "secret").chmod(0o644)  # the jail, not its mode, must hide it
    # A cache from before apps had uids: the shared build user's, handed over to the app's.
    cache = settings.build_cache(pusher.app.id)
    cache.mkdir(parents=True)
    (cache / "old").write_text("kept\n")
    shared = RunAs.system()
    shared.hand_over(cache)
    user = authenticate(pusher.api.ctx, pusher.token)
    probed = {
        "PROBE_DATA": str(settings.data_dir),
        "PROBE_STATE_DB": str(state_db),
        "PROBE_OTHER_CACHE": str(other_cache / "secret"),
    }
    update_config(pusher.api.ctx, user, pusher.app.name, probed)
    set_buildpacks(pusher.api.ctx, user, pusher.app.name, [str(probe)])
    repo = pusher.checkout(files={"Procfile": "web: python3 -m http.server $PORT\n"})

    status, output = push(pusher, repo)

    assert status == 0, output
    found = findings(output)
    assert found["build_dir"] == "/app", output
    assert found["pwd"] == "/app"
    assert pusher.app.uid is not None
    assert found["uid"] == str(pusher.app.uid)
    assert found["user"] == "dyno"  # the jail's /etc/passwd names it, as in its dynos
    # bwrap's root: the system's directories, and the way to what is bound at its own path
    # (the data directory's parts, the uv binary).
    tops = {Path(path).parts[1] for path in (settings.data_dir, find_uv_bin())}
    assert set(found["root"].split()) == {"app", "dev", "etc", "proc", "tmp", "usr"} | tops | {
        name for name in SYSTEM_TOP if Path("/", name).exists()
    }
    # Of the data directory, only the way to what the build needs is there.
    assert found["data"].split() == ["builds", "cache"], output
    assert found["state_db"] == "hidden"
    assert found["other_cache"] == "hidden"
    assert found["own_cache"] == "yes"
    assert int(found["processes"]) < 10  # its own pid namespace: not the machine's
    assert found["write_app"] == found["write_tmp"] == "yes"
    assert found["write_usr"] == "no"
    assert found["write_root"] == "no"
    assert found["write_env_dir"] == "no"
    # Here the data directory is below /tmp, which is the jail's own: whatever the probe
    # could write there is not on the machine.
    assert not (settings.data_dir / "probe").exists()
    for path in (cache, cache / "old", cache / "mine"):
        assert path.stat().st_uid == pusher.app.uid
    assert (other_cache / "secret").read_text() == "another app's\n"
