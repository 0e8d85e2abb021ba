"""The build jail's command: the build directory seen at /app, the rest at its own path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapal.build import sandbox
from kapal.build.sandbox import BuildSandbox
from kapal.sandbox.build_jail import Bind, BuildJail
from kapal.system_users import RunAs

BUILD = Path("/data/builds/tmp/b1")


def jail(*binds: Bind) -> BuildJail:
    return BuildJail("/usr/bin/bwrap", BUILD, binds, tmp_size=1024)


def pairs(args: list[str], option: str) -> list[tuple[str, str]]:
    return [(args[i + 1], args[i + 2]) for i, arg in enumerate(args) if arg == option]


def test_paths_in_the_build_directory_are_seen_at_slash_app() -> None:
    j = jail()
    assert j.inside(str(BUILD)) == "/app"
    assert j.inside(f"{BUILD}/.venv/bin/python") == "/app/.venv/bin/python"
    assert j.inside(f"{BUILD}x/file") == f"{BUILD}x/file"  # a neighbour, not below it
    assert j.inside("/usr/bin/python3") == "/usr/bin/python3"


def test_wrap_translates_argv_env_and_cwd() -> None:
    argv, env = jail().wrap(
        ["/bin/sh", "compile", str(BUILD), "/data/cache/a1", "-r", "requirements.txt"],
        {"PATH": f"{BUILD}/.venv/bin:/usr/bin", "UV_PROJECT_ENVIRONMENT": f"{BUILD}/.venv"},
        BUILD / "sub",
    )
    separator = argv.index("--")
    assert argv[separator + 1 :] == [
        "/bin/sh",
        "compile",
        "/app",
        "/data/cache/a1",
        "-r",
        "requirements.txt",
    ]
    assert env == {"PATH": "/app/.venv/bin:/usr/bin", "UV_PROJECT_ENVIRONMENT": "/app/.venv"}
    options = argv[:separator]
    assert options[options.index("--chdir") + 1] == "/app/sub"
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"):
        assert flag in options
    assert "--unshare-net" not in options  # builds download packages


def test_binds_come_after_the_private_tmp_and_the_root_is_read_only() -> None:
    argv, _ = jail(
        Bind(Path("/tmp/data/cache/a1"), writable=True),
        Bind(Path("/data/runtimes")),
        Bind(Path("/usr/local/bin/uv")),  # already there, with /usr
    ).wrap(["true"], {}, None)
    assert pairs(argv, "--bind-try") == [("/tmp/data/cache/a1", "/tmp/data/cache/a1")]
    assert pairs(argv, "--ro-bind-try")[-1] == ("/data/runtimes", "/data/runtimes")
    assert "/usr/local/bin/uv" not in argv
    assert argv.index("--tmpfs") < argv.index("--bind-try")
    assert argv[argv.index("--tmpfs") - 2 : argv.index("--tmpfs")] == ["--size", "1024"]
    assert pairs(argv, "--bind") == [(str(BUILD), "/app")]
    assert ("/usr", "/usr") in pairs(argv, "--ro-bind")
    assert argv[argv.index("--remount-ro") + 1] == "/"
    assert argv[argv.index("--chdir") + 1] == "/app"


def test_no_jail_without_root_or_when_turned_off(tmp_path: Path) -> None:
    assert BuildSandbox(None, tmp_path / "s").jail(None, BUILD, []) is None
    off = BuildSandbox("none", tmp_path / "s")
    assert off.jail(RunAs("app", 1_200_000_001, 1_200_000_001), BUILD, []) is None


def test_a_failed_trial_is_tried_again_at_the_next_build_and_success_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [None, "/usr/bin/bwrap"]  # the first trial fails (a passing reason), then works
    trials: list[str | None] = []

    def detect(choice: str | None, work: Path, user: RunAs | None) -> str | None:
        trials.append(choice)
        return answers.pop(0)

    monkeypatch.setattr(sandbox, "detect", detect)
    monkeypatch.setattr(sandbox, "passwd_files", lambda etc, uid, gid: etc)
    builds = BuildSandbox(None, tmp_path / "s")
    user = RunAs("app", 1_200_000_001, 1_200_000_001)

    assert builds.jail(user, BUILD, []) is None  # this build runs unjailed
    second = builds.jail(user, BUILD, [])
    assert second is not None and second.bwrap == "/usr/bin/bwrap"  # the next one is tried again
    third = builds.jail(user, BUILD, [])
    assert third is not None and third.bwrap == "/usr/bin/bwrap"
    assert len(trials) == 2  # a trial that worked is not run again
