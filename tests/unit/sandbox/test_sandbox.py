"""The sandbox's pure parts: which cgroup layout a machine has, what each dyno's group is
given, the bwrap command line and the passwd a jail shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kapal.domain.errors import InvalidParams
from kapal.domain.formation import parse_memory_overrides, size_limits
from kapal.sandbox.cgroups import DYNOS_CPU_WEIGHT, TRACKER, Group, Layout, Limits, _hierarchies
from kapal.sandbox.jail import CLEAN_ENV, Bubblewrap, Confinement, passwd_files
from kapal.settings import Settings

HYBRID_MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
HYBRID_OWN = "8:pids:/\n4:memory:/agent/x\n1:cpu:/\n0::/\n"


def test_hybrid_layout_uses_v1_controllers_and_the_v2_tracker() -> None:
    found = _hierarchies(HYBRID_MOUNTS, HYBRID_OWN)
    assert found == (
        1,
        {
            "cpu": Path("/sys/fs/cgroup/cpu"),
            "memory": Path("/sys/fs/cgroup/memory/agent/x"),
            "pids": Path("/sys/fs/cgroup/pids"),
            TRACKER: Path("/sys/fs/cgroup/unified"),
        },
    )


def test_v2_layout_puts_everything_in_one_group() -> None:
    mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"
    version, places = _hierarchies(mounts, "0::/system.slice/kapal.service\n") or (0, {})
    assert version == 2
    assert set(places.values()) == {Path("/sys/fs/cgroup/system.slice/kapal.service")}


def test_no_cgroups_mounted_means_none() -> None:
    assert _hierarchies("proc /proc proc rw 0 0\n", "0::/\n") is None


@pytest.mark.parametrize("version", [1, 2])
def test_limits_are_written_in_each_versions_files(tmp_path: Path, version: int) -> None:
    dirs = {key: tmp_path / key for key in ("memory", "pids", "cpu")}
    for path in dirs.values():
        path.mkdir()
    Group(version, dirs).limit(Limits(memory=1 << 30, pids=256, cpu_weight=200))
    if version == 1:
        assert (dirs["memory"] / "memory.limit_in_bytes").read_text() == str(1 << 30)
        assert (dirs["cpu"] / "cpu.shares").read_text() == "2048"
    else:
        assert (dirs["memory"] / "memory.max").read_text() == str(1 << 30)
        assert (dirs["cpu"] / "cpu.weight").read_text() == "200"
    assert (dirs["pids"] / "pids.max").read_text() == "256"


@pytest.mark.parametrize(
    ("version", "file", "value"), [(1, "cpu.shares", "102"), (2, "cpu.weight", "10")]
)
def test_all_dynos_together_weigh_less_than_one_platform_process(
    tmp_path: Path, version: int, file: str, value: str
) -> None:
    # The instance's group holds every dyno: spinning dynos leave the agent and router a CPU.
    assert DYNOS_CPU_WEIGHT < 100
    root = tmp_path / "cpu"
    root.mkdir()
    if version == 1:
        mounts, own = f"cgroup {root} cgroup rw,cpu 0 0\n", "1:cpu:/\n"
    else:
        mounts, own = f"cgroup2 {root} cgroup2 rw 0 0\n", "0::/\n"
        (root / "cgroup.controllers").write_text("cpu\n")
    (tmp_path / "mounts").write_text(mounts)
    (tmp_path / "own").write_text(own)
    layout = Layout.detect("test", tmp_path / "mounts", tmp_path / "own")
    assert layout is not None
    assert (root / "kapal-test" / file).read_text() == value


def test_memory_counts_resident_swapped_and_tmpfs(tmp_path: Path) -> None:
    (tmp_path / "memory.stat").write_text(
        "cache 900\nrss 1\ntotal_cache 900000\ntotal_rss 1000\ntotal_shmem 20\ntotal_swap 3\n"
    )
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    group = Group(1, {"memory": tmp_path})
    assert group.memory() == 1023
    assert group.oom_kills() == 2


def test_sizes_and_their_memory_overrides() -> None:
    assert size_limits("standard-2x").memory == 1024 << 20
    assert size_limits("standard-2x").pids == 512
    assert size_limits("eco", {"eco": 256}).memory == 256 << 20
    assert parse_memory_overrides("eco=256, 2X=2048") == {"eco": 256, "standard-2x": 2048}
    for bad in ("eco=", "eco=8", "tiny=512", "eco=lots"):
        with pytest.raises(InvalidParams):
            parse_memory_overrides(bad)


def test_settings_refuse_an_unknown_sandbox_and_bad_memory(tmp_path: Path) -> None:
    env = {"KAPAL_DATA_DIR": str(tmp_path)}
    assert Settings.from_env({**env, "KAPAL_SANDBOX": "Unshare"}).sandbox == "unshare"
    assert Settings.from_env(env).sandbox is None
    with pytest.raises(ValueError, match="KAPAL_SANDBOX must be one of"):
        Settings.from_env({**env, "KAPAL_SANDBOX": "docker"})
    with pytest.raises(ValueError, match="KAPAL_DYNO_MEMORY"):
        Settings.from_env({**env, "KAPAL_DYNO_MEMORY": "eco=1"})


def test_bwrap_command_shows_only_what_the_dyno_needs(tmp_path: Path) -> None:
    etc = passwd_files(tmp_path / "etc", 1_200_000_007, 1_200_000_007)
    c = Confinement(
        1_200_000_007, 1_200_000_007, tmp_path / "v3", tmp_path / "mnt", 1 << 20, "dyno-web-1", etc
    )
    env = {"DATABASE_URL": "postgres://u:secret@db/x", "LD_PRELOAD": "/app/evil.so"}
    launch = Bubblewrap().command(["/bin/bash", "-c", "gunicorn app:app"], env, c)
    try:
        args = [a.decode() for a in os.pread(launch.fds[0], 1 << 20, 0).split(b"\0")[:-1]]
    finally:
        launch.close()
    # bwrap by absolute path, with nothing of the dyno's environment: PATH or LD_PRELOAD
    # cannot choose what runs before the jail; the secrets reach it through the descriptor.
    assert launch.argv[0].startswith("/") and launch.argv[1:3] == ["--args", str(launch.fds[0])]
    assert launch.argv[-4:] == ["--", "/bin/bash", "-c", "gunicorn app:app"]
    assert launch.env == CLEAN_ENV
    assert "secret" not in " ".join(launch.argv)
    setenv = [tuple(args[i + 1 : i + 3]) for i, arg in enumerate(args) if arg == "--setenv"]
    assert sorted(setenv) == sorted(env.items())
    assert "--clearenv" in args and "--disable-userns" in args
    assert args[args.index("--remount-ro") + 1] == "/"
    binds = [tuple(args[i + 1 : i + 3]) for i, arg in enumerate(args) if arg.endswith("bind")]
    sources = {source for source, _ in binds}
    assert ("/usr", "/usr") in binds and ("/etc", "/etc") in binds
    assert (str(tmp_path / "mnt" / "app"), "/app") in binds
    assert str(tmp_path / "v3") not in sources  # the release is only reached through /app
    assert "--new-session" in args and "--unshare-pid" in args and "--unshare-user" in args
    assert "dyno:x:1200000007:1200000007:dyno:/app:/bin/bash" in (etc / "passwd").read_text()
    tty = Bubblewrap().command(["sh"], {}, Confinement(1, 1, tmp_path, tmp_path, 1, "h", tty=True))
    try:
        assert b"--new-session" not in os.pread(tty.fds[0], 1 << 20, 0)
    finally:
        tty.close()
